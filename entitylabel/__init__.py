"""entitylabel: entity-level pseudo-labels for infrared/visible image-fusion datasets.

`entitylabel.load(repo_or_path, config)` returns a released dataset as a `datasets.DatasetDict`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "download", "load"]


def __getattr__(name: str) -> Any:  # lazy so `import entitylabel` stays light: datasets loads on first use
    if name in ("load", "download"):
        from .export import load as _load_module

        return getattr(_load_module, name)
    raise AttributeError(f"module 'entitylabel' has no attribute {name!r}")
