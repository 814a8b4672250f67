"""Where each file of an export folder lives, and what configs a folder already holds.

README.md                                  dataset card (YAML header the hub reads + documentation)
data/<config>/<split>-0000i-of-0000N.parquet  the hub dataset: images embedded
tables/<config>/pairs.parquet, captions.parquet, entities.parquet, labels.parquet
                                           plain tables, no images
tables/<config>/label_space.json           the config's label space (names, counts, vocabulary hash)
tables/<config>/export.json                everything the card says about the config (the card is
                                           regenerated from all configs' export.json files)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import EntityLabelError

CARD = "README.md"
DATA = "data"
TABLES = "tables"
EXPORT_INFO = "export.json"
_CONFIG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def check_config_name(name: str) -> str:
    if not _CONFIG_RE.match(name or ""):
        raise EntityLabelError(
            f"config name {name!r} must be letters, digits, '_' or '-' (e.g. roadscene, tno, msrs, m3fd)"
        )
    return name


def data_dir(root: Path, config: str) -> Path:
    return root / DATA / config


def tables_dir(root: Path, config: str) -> Path:
    return root / TABLES / config


def read_config_infos(root: Path) -> dict[str, dict[str, Any]]:
    """config name -> its export.json, for every config already in the folder (sorted by name)."""
    infos = {}
    for path in sorted((root / TABLES).glob(f"*/{EXPORT_INFO}")):
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise EntityLabelError(f"unreadable export info ({e})", path=path) from None
        infos[path.parent.name] = info
    return infos
