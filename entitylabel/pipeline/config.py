"""Pipeline YAML files (`pipelines/*.yaml`): schema, safe loading and validation with one-line errors.

A pipeline file describes one staged run (discover -> caption -> extract -> export -> report) of one dataset.
Every key is checked on load: an unknown key, a wrong type, a bad choice or a missing file is one error line
naming the file, the line and the key path (`pipelines/tno.yaml:14: caption.batch_size: expected an integer,
got 'eight'`). Relative paths in the file are relative to the file's folder; paths given on the command line
(`--data`, `--out`) are relative to the current folder.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from ..errors import EntityLabelError
from ..export.splits import DEFAULT_TEST_FRACTION

STAGES = ("discover", "caption", "extract", "export", "report")


def _meta(help: str, **kw: Any) -> dict[str, Any]:
    return {"help": help, **kw}


@dataclass
class DataConfig:
    root: Path | None = field(default=None, metadata=_meta("dataset root (--data overrides)", exists="dir"))
    layout: str | None = field(default=None, metadata=_meta("discover layout; null = auto-detect"))
    dataset: str | None = field(default=None, metadata=_meta("dataset name used in pair ids"))
    splits: list[str] | None = field(default=None, metadata=_meta("keep only these splits; null = all"))
    sample: int | None = field(default=None, metadata=_meta("root null: generate this many synthetic pairs"))
    workers: int = field(default=4, metadata=_meta("threads that read and hash images", min=1))


@dataclass
class CaptionConfig:
    use: Literal["vlm", "external", "auto"] = field(
        default="vlm", metadata=_meta("vlm, external (caption.external file), or auto (VLM if available)")
    )
    model: str | None = field(default=None, metadata=_meta("VLM hub id or local folder (--model overrides)"))
    revision: str | None = None
    prompts: list[str] = field(default_factory=lambda: ["default"], metadata=_meta("prompt ids, sets or files"))
    modalities: list[Literal["vis", "ir"]] = field(default_factory=lambda: ["vis", "ir"])
    batch_size: int = field(default=4, metadata=_meta("images per generate() call", min=1))
    max_new_tokens: int = field(default=96, metadata=_meta("token limit per caption", min=1))
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device: str = "auto"
    shard_size: int = field(default=128, metadata=_meta("pairs per caption shard", min=1))
    trust_remote_code: bool = False
    external: Path | None = field(default=None, metadata=_meta("external caption file", exists="file"))
    external_name: str | None = field(default=None, metadata=_meta("provenance name: external:<name>"))
    options: dict[str, Any] = field(default_factory=dict, metadata=_meta("more run_caption keyword arguments"))


@dataclass
class ExtractConfig:
    vocab: Path | None = field(default=None, metadata=_meta("vocabulary YAML (required)", exists="file"))
    min_support: int = field(default=1, metadata=_meta("sources that must mention an entity", min=1))
    min_pairs: int = field(default=1, metadata=_meta("pairs an entity needs to stay in the label space", min=1))
    keep_hedged: bool = field(default=False, metadata=_meta("keep hedged mentions ('possibly a dog')"))
    spacy_model: str | None = None
    n_process: int = field(default=1, metadata=_meta("spaCy processes", min=1))
    options: dict[str, Any] = field(default_factory=dict, metadata=_meta("more run_extract keyword arguments"))


@dataclass
class ExportConfig:
    config: str | None = field(default=None, metadata=_meta("dataset config name; null = pipeline name"))
    out: Path | None = field(default=None, metadata=_meta("dataset folder; null = <run folder>/export"))
    test_fraction: float = field(
        default=DEFAULT_TEST_FRACTION, metadata=_meta("hashed test split without split folders", min=0.0, max=1.0)
    )
    caption_prompt: str | None = None
    options: dict[str, Any] = field(default_factory=dict, metadata=_meta("more run_export keyword arguments"))


@dataclass
class ReportConfig:
    enabled: bool = True
    page_size: int = field(default=50, metadata=_meta("pairs per page", min=1))
    thumb_size: int = field(default=112, metadata=_meta("thumbnail size in pixels", min=16, max=512))
    fused: Path | None = field(default=None, metadata=_meta("fused images folder", exists="dir"))


@dataclass
class PipelineConfig:
    name: str = field(metadata=_meta("run name"))
    out: Path | None = field(default=None, metadata=_meta("run folder; null = outputs/<name> (--out overrides)"))
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    path: Path = field(default=Path("."), metadata=_meta("the YAML file (not a key)", internal=True))

    @property
    def run_dir(self) -> Path:
        return self.out if self.out is not None else Path("outputs") / self.name

    @property
    def export_dir(self) -> Path:
        return self.export.out if self.export.out is not None else self.run_dir / "export"

    @property
    def export_config(self) -> str:
        return self.export.config or self.name


# ---- loading ------------------------------------------------------------------------------------------


class _Where:
    """Line numbers of keys in the YAML file, by key path, for error messages."""

    def __init__(self, file: Path, text: str) -> None:
        self.file = file
        self.lines: dict[tuple[str, ...], int] = {}
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            node = None
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple[str, ...]) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = path + (str(k.value),)
                self._walk(v, key)
                self.lines[key] = k.start_mark.line + 1

    def error(self, path: tuple[str, ...], message: str, hint: str | None = None) -> EntityLabelError:
        line = next((self.lines[path[:i]] for i in range(len(path), -1, -1) if path[:i] in self.lines), None)
        where = f"{self.file}:{line}" if line else str(self.file)
        key = ".".join(path)
        return EntityLabelError(f"{key}: {message}" if key else message, path=where, hint=hint)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if tp is Path:
        return "a path"
    if origin is list:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    return str(tp)


def _convert(value: Any, tp: Any, path: tuple[str, ...], where: _Where, base: Path, meta: dict) -> Any:
    """Check `value` against the annotation `tp`; returns the converted value (paths resolved against `base`)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], path, where, base, meta)
    if value is None and dataclasses.is_dataclass(tp):  # an empty section (`data:`) means its defaults
        return _build(tp, {}, path, where, base)
    if value is None and origin is dict:
        return {}
    if value is None:
        raise where.error(path, f"must not be empty (expected {_type_name(tp)})")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise where.error(path, f"expected a mapping, got {type(value).__name__}")
        return _build(tp, value, path, where, base)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise where.error(path, f"expected one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise where.error(path, f"expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [_convert(v, item, path + (str(i),), where, base, meta) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise where.error(path, f"expected a mapping, got {type(value).__name__}")
        return {str(k): v for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise where.error(path, f"expected true or false, got {value!r}")
        return value
    if tp is int or tp is float:
        ok = isinstance(value, int) if tp is int else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            raise where.error(path, f"expected {_type_name(tp)}, got {value!r}")
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and value < lo or hi is not None and value > hi:
            rng = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
            raise where.error(path, f"must be {rng}, got {value!r}")
        return tp(value)
    if tp is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise where.error(path, f"expected a string, got {type(value).__name__}")
        return str(value)
    if tp is Path:
        if not isinstance(value, str) or not value.strip():
            raise where.error(path, f"expected a path, got {value!r}")
        p = Path(value).expanduser()
        return Path(os.path.normpath(p if p.is_absolute() else base / p))
    raise TypeError(f"unsupported annotation {tp!r}")  # a bug in the schema, not a user error


def _build(cls: type, data: dict[str, Any], path: tuple[str, ...], where: _Where, base: Path) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key)
        if key not in fields:
            known = ", ".join(fields)
            raise where.error(path + (key,), "unknown key", hint=f"known keys here: {known}")
        kwargs[key] = _convert(value, hints[key], path + (key,), where, base, dict(fields[key].metadata))
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise where.error(path + (name,), "missing required key")
    return cls(**kwargs)


def _check_files(cfg: PipelineConfig, where: _Where) -> None:
    """Files and folders named in the config must exist (after overrides)."""
    for section in ("data", "caption", "extract", "export", "report"):
        obj = getattr(cfg, section)
        for f in dataclasses.fields(obj):
            kind = f.metadata.get("exists")
            value = getattr(obj, f.name)
            if kind is None or value is None:
                continue
            ok = value.is_dir() if kind == "dir" else value.is_file()
            if not ok:
                what = "folder" if kind == "dir" else "file"
                raise where.error((section, f.name), f"{what} not found: {value}")
    for i, spec in enumerate(cfg.caption.prompts):
        if spec.endswith(".txt") or "/" in spec:  # a prompt file or folder, not a built-in id
            p = Path(spec) if Path(spec).is_absolute() else cfg.path.parent / spec
            if not p.exists():
                raise where.error(("caption", "prompts", str(i)), f"prompt file not found: {p}")
            cfg.caption.prompts[i] = str(p)


def _check_consistency(cfg: PipelineConfig, where: _Where) -> None:
    c = cfg.caption
    if cfg.data.root is None and not cfg.data.sample:
        raise where.error(("data", "root"), "not set", hint="pass --data /path/to/dataset")
    if cfg.extract.vocab is None:
        raise where.error(("extract", "vocab"), "not set", hint="e.g. vocab: ../vocab/ivif.yaml")
    if c.use == "vlm" and not c.model:
        raise where.error(("caption", "model"), "not set", hint="pass --model ID_OR_DIR or set caption.external")
    if c.use in ("external", "auto") and c.external is None and not cfg.data.sample:
        raise where.error(
            ("caption", "external"),
            f"not set but caption.use is {c.use!r}",
            hint="name an external caption file (JSONL/CSV/Parquet)",
        )
    if c.use == "auto" and not c.model:
        raise where.error(("caption", "model"), "not set but caption.use is 'auto'")


def load_config(
    path: str | Path,
    *,
    data: str | Path | None = None,
    model: str | None = None,
    out: str | Path | None = None,
    external: str | Path | None = None,
) -> PipelineConfig:
    """Load and validate a pipeline YAML; `data`, `model`, `out` override data.root, caption.model and out.

    `model` also switches caption.use to "vlm" (asking for a model means captioning with it); `external`
    sets caption.external and switches caption.use to "external".
    """
    if model is not None and external is not None:
        raise EntityLabelError("pass --model (caption with a VLM) or --external (a caption file), not both")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EntityLabelError("pipeline file not found", path=p) from None
    except (OSError, UnicodeDecodeError) as e:
        raise EntityLabelError(f"cannot read pipeline file ({e})", path=p) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise EntityLabelError(f"YAML syntax error: {problem}", path=where) from None
    w = _Where(p, text)
    if not isinstance(raw, dict):
        raise w.error((), "a pipeline file must be a mapping of keys (name, data, caption, ...)")
    cfg: PipelineConfig = _build(PipelineConfig, raw, (), w, p.parent)
    cfg.path = p
    if data is not None:
        cfg.data.root = Path(data).expanduser()
    if out is not None:
        cfg.out = Path(out).expanduser()
    if model is not None:
        cfg.caption.model = model
        cfg.caption.use = "vlm"
    if external is not None:
        cfg.caption.external = Path(external).expanduser()
        cfg.caption.external_name = None  # named after the file, not after the one the YAML names
        cfg.caption.use = "external"
        if not cfg.caption.external.is_file():
            raise EntityLabelError("--external caption file not found", path=cfg.caption.external)
    if data is not None and cfg.data.root is not None and not cfg.data.root.is_dir():
        raise EntityLabelError("--data folder not found", path=cfg.data.root)
    _check_files(cfg, w)
    _check_consistency(cfg, w)
    return cfg


def describe_schema() -> str:
    """Every key with its type and help, for docs and `--help`."""
    lines: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{f.name}.")
                continue
            lines.append(f"{prefix}{f.name}: {f.metadata.get('help', '')}".rstrip(": "))

    walk(PipelineConfig, "")
    return "\n".join(lines)
