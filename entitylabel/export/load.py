"""`entitylabel.load` / `entitylabel.download`: a released dataset (hub id or local folder) in one line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..datapaths import is_inside_path
from ..errors import EntityLabelError
from ..io import parked_name, swapped_old
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


def _card_data_files(entry: dict[str, Any], where: str, card: Path) -> dict[str, list[str]]:
    """split -> patterns of one `configs` entry; the hub's forms: a path, a list of paths (split `train`), or a
    list of `{split, path}` entries whose path is a string or a list of strings."""
    files = entry.get("data_files")
    if isinstance(files, str) or (isinstance(files, list) and files and all(isinstance(f, str) for f in files)):
        return {"train": [files] if isinstance(files, str) else list(files)}
    if isinstance(files, dict):
        files = [files]
    if not isinstance(files, list) or not files:
        raise EntityLabelError(f"{where}: data_files must be a path or a list of {{split, path}} entries", path=card)
    out: dict[str, list[str]] = {}
    for k, f in enumerate(files):
        if not isinstance(f, dict) or not isinstance(f.get("split"), str) or not f["split"]:
            raise EntityLabelError(f"{where}: data_files entry {k} has no split name", path=card)
        path = f.get("path")
        paths = [path] if isinstance(path, str) else path
        if not isinstance(paths, list) or not paths or not all(isinstance(x, str) and x for x in paths):
            raise EntityLabelError(f"{where}: data_files entry {k} (split {f['split']}) has no path", path=card)
        out.setdefault(f["split"], []).extend(paths)
    return out


def _card_configs(folder: Path) -> dict[str, dict[str, list[str]]]:
    """config -> split -> data file patterns, from the card's YAML header (a downloaded card is checked: any
    malformed entry is one line naming the card and the entry)."""
    from huggingface_hub import DatasetCard

    card = folder / layout.CARD
    if not card.is_file():
        raise EntityLabelError("no README.md dataset card here", path=folder)
    try:
        data = DatasetCard.load(card).data.to_dict()
    except Exception as e:  # YAML errors and the like
        raise EntityLabelError(f"unreadable dataset card ({e})", path=card) from None
    entries = data.get("configs") or []
    if not isinstance(entries, list):
        raise EntityLabelError(f"configs must be a list of entries, got a {type(entries).__name__}", path=card)
    configs: dict[str, dict[str, list[str]]] = {}
    for k, entry in enumerate(entries):
        name = entry.get("config_name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            got = "no config_name" if name is None else f"config_name {name!r} is not a name"
            raise EntityLabelError(f"configs entry {k}: {got}", path=card)
        if name in configs:
            raise EntityLabelError(f"configs entry {k}: config {name!r} is listed twice", path=card)
        configs[name] = _card_data_files(entry, f"config {name}", card)
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


def config_data_files(folder: Path, config: str | None) -> tuple[str, dict[str, list[Path]]]:
    """(config, split -> data files) of a local release: from its card, or `data/<config>/<split>-*.parquet` in a
    folder without one (e.g. built by a test). `config` may be left out when there is only one."""
    if (folder / layout.CARD).is_file():
        configs = _card_configs(folder)
        names = list(configs)
    else:
        data = folder / layout.DATA
        dirs = [p for p in sorted(data.iterdir()) if p.is_dir()] if data.is_dir() else []
        names = [p.name for p in dirs if not p.name.startswith(".")]  # not temporaries or parked copies
        names = sorted({*names, *(n for p in dirs if (n := parked_name(p.name)))})
        configs = {n: {} for n in names}
        for n in names:
            src = data / n if (data / n).is_dir() else data / swapped_old(data / n).name
            for f in sorted(src.glob("*.parquet")):
                configs[n].setdefault(f.name.split("-")[0], []).append(f"{layout.DATA}/{n}/{f.name}")
    if config is None:
        if len(names) != 1:
            raise EntityLabelError(f"{len(names)} configs here ({', '.join(names)}); pass --config", path=folder)
        config = names[0]
    _pick(names, config, str(folder))
    files = {}
    for split, patterns in configs[config].items():
        files[split] = sorted({p for pat in patterns for p in folder.glob(pat) if p.is_file()})
        if not files[split]:  # an export killed between its two renames parked the config (io.swap_dir)
            files[split] = sorted({p for pat in patterns for p in folder.glob(_parked(pat)) if p.is_file()})
        if not files[split]:
            raise EntityLabelError(f"config {config} split {split}: no data files match {patterns}", path=folder)
    return config, files


def _parked(pattern: str) -> str:
    """`data/<config>/…` as `data/.<config>.old/…`: where `io.swap_dir` leaves a config it was replacing when killed
    between its two renames (the next export into the folder puts it back)."""
    parts = pattern.split("/")
    if len(parts) < 3 or parts[0] != layout.DATA:
        return pattern
    return "/".join([parts[0], swapped_old(parts[1]).name, *parts[2:]])


@dataclass
class DataFile:
    """One checked data file of a release: its rows, label names and per-label pair counts."""

    path: Path
    num_rows: int
    names: list[str]
    label_counts: dict[str, int]


def bad_entity_index(rows: Any, n_names: int) -> tuple[int, Any] | None:
    """(row, value) of the first entity class index outside 0..n_names-1 in an `entities` column, else None.

    A released dataset is data from elsewhere: -1 would silently read as the last name, 99 as nothing."""
    for r, row in enumerate(rows):
        for i in row or []:
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n_names:
                return r, i
    return None


def entity_index_error(value: Any, n_names: int, where: str, path: Any) -> EntityLabelError:
    return EntityLabelError(
        f"{where}: entity class index {value!r} is outside 0..{n_names - 1} (the label space has {n_names} names)",
        path=path,
        hint="the release is damaged; re-export or re-download it",
    )


def check_data_file(path: Path) -> DataFile:
    """Open one Parquet data file of a release and check its entity class indexes; one line naming the file (and
    the row) when it is not Parquet or an index is out of range."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features

    try:
        pf = pq.ParquetFile(path)
        feats = Features.from_arrow_schema(pf.schema_arrow)
        rows = pf.read(columns=["entities"]).column("entities").to_pylist() if "entities" in feats else []
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise EntityLabelError(f"not a readable Parquet data file ({first})", path=path) from None
    names = list(getattr(feats["entities"].feature, "names", []) or []) if "entities" in feats else []
    bad = bad_entity_index(rows, len(names)) if names else None
    if bad is not None:
        raise entity_index_error(bad[1], len(names), f"row {bad[0]}", path)
    counts: dict[str, int] = {}
    for row in rows:
        for i in set(row or []):
            label = names[i] if names else str(i)
            counts[label] = counts.get(label, 0) + 1
    return DataFile(Path(path), pf.metadata.num_rows, names, counts)


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
    configs = _card_configs(folder)
    summary = DatasetSummary(source=source or str(folder), folder=folder)
    for name in _pick(list(configs), config, str(folder)):
        splits, counts, names = {}, {}, []
        for split, files in config_data_files(folder, name)[1].items():
            splits[split], counts[split] = 0, {}
            for f in files:
                info = check_data_file(f)
                splits[split] += info.num_rows
                names = info.names or names
                for label, n in info.label_counts.items():
                    counts[split][label] = counts[split].get(label, 0) + n
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
