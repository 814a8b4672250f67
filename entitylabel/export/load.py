"""`entitylabel.load` / `entitylabel.download`: a released dataset (hub id or local folder) in one line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..datapaths import is_inside_path
from ..errors import EntityLabelError
from . import layout


@dataclass
class ConfigSummary:
    name: str
    splits: dict[str, int]  # split -> pairs
    label_space: list[str]
    label_counts: dict[str, dict[str, int]]  # split -> label -> pairs carrying it


@dataclass
class DatasetSummary:
    source: str
    folder: Path
    configs: dict[str, ConfigSummary] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"{self.source} ({self.folder}): {len(self.configs)} config(s): {', '.join(self.configs)}"]
        for c in self.configs.values():
            splits = ", ".join(f"{s} {n}" for s, n in c.splits.items())
            out.append(f"config {c.name}: {sum(c.splits.values())} pairs ({splits}); label space {len(c.label_space)}")
            totals = {n: sum(c.label_counts[s].get(n, 0) for s in c.splits) for n in c.label_space}
            for n in sorted(c.label_space, key=lambda n: (-totals[n], n)):
                per = ", ".join(f"{s} {c.label_counts[s].get(n, 0)}" for s in c.splits)
                out.append(f"  {n}: {totals[n]} ({per})")
        return out


def _is_local(repo_or_path: str | Path) -> bool:
    return Path(repo_or_path).exists() or str(repo_or_path).startswith((".", "/", "~"))


def _card_configs(folder: Path) -> dict[str, dict[str, list[str]]]:
    """config -> split -> data file patterns, from the card's YAML header."""
    from huggingface_hub import DatasetCard

    card = folder / layout.CARD
    if not card.is_file():
        raise EntityLabelError("no README.md dataset card here", path=folder)
    try:
        data = DatasetCard.load(card).data.to_dict()
    except Exception as e:  # YAML errors and the like
        raise EntityLabelError(f"unreadable dataset card ({e})", path=card) from None
    configs = {}
    for entry in data.get("configs") or []:
        files = entry.get("data_files") or []
        files = [{"split": "train", "path": files}] if isinstance(files, str | dict) else files
        configs[entry["config_name"]] = {
            f["split"]: [f["path"]] if isinstance(f["path"], str) else list(f["path"])
            for f in files
            if isinstance(f, dict)
        }
    for name, splits in configs.items():  # a downloaded card must not make us read files beside the folder
        for split, patterns in splits.items():
            for pat in patterns:
                if not is_inside_path(pat):
                    raise EntityLabelError(
                        f"config {name} split {split}: data file pattern {pat!r} points outside the dataset folder",
                        path=card,
                    )
    if not configs:
        raise EntityLabelError("the dataset card lists no configs", path=card)
    return configs


def _pick(configs: list[str], config: str | None, where: str) -> list[str]:
    if config is None:
        return configs
    if config not in configs:
        raise EntityLabelError(f"config {config!r} not found (configs: {', '.join(configs)})", path=where)
    return [config]


def _fetch(repo_or_path: str | Path, config: str | None, revision: str | None) -> Path:
    """A local folder holding the dataset: the path itself, or a hub snapshot (only `config`'s files)."""
    if _is_local(repo_or_path):
        folder = Path(repo_or_path).expanduser()
        if not folder.is_dir():
            raise EntityLabelError("dataset folder not found", path=folder)
        return folder
    from huggingface_hub import snapshot_download

    from .publish import _describe, check_repo_id, hub_reachable

    repo_id = check_repo_id(str(repo_or_path))
    reason = hub_reachable()
    if reason and reason != "HF_HUB_OFFLINE is set":  # offline mode may still find a cached snapshot
        raise EntityLabelError(
            f"cannot fetch dataset {repo_id} from the hub ({reason}; no local folder of that name either)"
        )
    patterns = ["README.md", f"{layout.TABLES}/*/{layout.EXPORT_INFO}"]
    patterns += [f"{layout.DATA}/{config}/*", f"{layout.TABLES}/{config}/*"] if config else ["*"]
    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision, allow_patterns=patterns))
    except Exception as e:  # offline, not found, no access: one line
        raise EntityLabelError(
            f"cannot fetch dataset {repo_id} from the hub ({_describe(e)}; no local folder of that name either)"
        ) from None


def summarize(folder: Path, config: str | None = None, source: str | None = None) -> DatasetSummary:
    """Configs, splits, pair counts and label frequencies, read from Parquet metadata and the labels column."""
    import pyarrow.parquet as pq
    from datasets import Features

    configs = _card_configs(folder)
    summary = DatasetSummary(source=source or str(folder), folder=folder)
    for name in _pick(list(configs), config, str(folder)):
        splits, counts, names = {}, {}, []
        for split, patterns in configs[name].items():
            files = sorted({p for pat in patterns for p in folder.glob(pat) if p.is_file()})
            if not files:
                raise EntityLabelError(f"config {name} split {split}: no data files match {patterns}", path=folder)
            splits[split], counts[split] = 0, {}
            for f in files:
                pf = pq.ParquetFile(f)
                splits[split] += pf.metadata.num_rows
                feats = Features.from_arrow_schema(pf.schema_arrow)
                if "entities" not in feats:
                    continue
                names = list(getattr(feats["entities"].feature, "names", []) or [])
                for row in pf.read(columns=["entities"]).column("entities").to_pylist():
                    for i in set(row or []):
                        label = names[i] if isinstance(i, int) and i < len(names) else str(i)
                        counts[split][label] = counts[split].get(label, 0) + 1
        summary.configs[name] = ConfigSummary(name, splits, names, counts)
    return summary


def download(
    repo_or_path: str | Path, config: str | None = None, *, revision: str | None = None, quiet: bool = False
) -> DatasetSummary:
    """Fetch a released dataset (hub id or local folder) and print what it holds; returns the summary."""
    folder = _fetch(repo_or_path, config, revision)
    summary = summarize(folder, config, source=str(repo_or_path))
    if not quiet:
        print("\n".join(summary.lines()))
    return summary


def load(repo_or_path: str | Path, config: str | None = None, **kwargs: Any) -> Any:
    """`datasets.DatasetDict` of one config of a released dataset (hub id or local export folder).

    `config` may be left out when there is only one; extra keyword arguments go to `datasets.load_dataset`
    (e.g. `cache_dir`, `revision`, `split`).
    """
    import datasets

    source = str(Path(repo_or_path).expanduser()) if _is_local(repo_or_path) else str(repo_or_path)
    if _is_local(repo_or_path):
        if not Path(source).is_dir():
            raise EntityLabelError("dataset folder not found", path=source)
        names = list(_card_configs(Path(source)))
    else:
        from .publish import _describe, check_repo_id, hub_reachable

        check_repo_id(source)
        reason = hub_reachable()
        if reason and reason != "HF_HUB_OFFLINE is set":  # offline mode may still use the local cache
            raise EntityLabelError(
                f"cannot read dataset {source} from the hub ({reason}; no local folder of that name either)"
            )
        try:
            names = datasets.get_dataset_config_names(source, revision=kwargs.get("revision"))
        except Exception as e:  # offline, not found, no access
            raise EntityLabelError(f"cannot read dataset {source} ({_describe(e)})") from None
    if config is None:
        if len(names) != 1:
            raise EntityLabelError(f"{source} has {len(names)} configs ({', '.join(names)}); pass config=")
        config = names[0]
    _pick(names, config, source)
    return datasets.load_dataset(source, config, **kwargs)


def export_info(folder: str | Path, config: str) -> dict[str, Any]:
    """The export.json of one config in a local export folder (provenance, counts, split method)."""
    path = layout.tables_dir(Path(folder), layout.check_config_name(config)) / layout.EXPORT_INFO
    if not path.is_file():
        raise EntityLabelError("no export.json for this config", path=path)
    return json.loads(path.read_text(encoding="utf-8"))
