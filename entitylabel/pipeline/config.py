"""Pipeline YAML files (`pipelines/*.yaml`): schema, safe loading and validation with one-line errors.

A pipeline file describes one staged run (discover -> caption -> extract -> export -> report) of one dataset.
Every key is checked on load: an unknown key, a wrong type, a bad choice or a missing file is one error line
naming the file, the line and the key path (`pipelines/tno.yaml:14: caption.batch_size: expected an integer,
got 'eight'`). Relative paths in the file are relative to the file's folder; paths given on the command line
(`--data`, `--out`) are relative to the current folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import EntityLabelError
from ..settings import (
    CaptionSettings,
    DiscoverSettings,
    ExportSettings,
    ExtractSettings,
    ReportSettings,
    Where,
    build,
    fields_of,
    setting,
)
from ..yaml_safe import NoAliasLoader

STAGES = ("discover", "caption", "extract", "export", "report")

# Each section is its stage's settings (entitylabel/settings.py) plus the keys only a pipeline has.


@dataclass
class DataConfig(DiscoverSettings):
    root: Path | None = setting(None, "dataset root (--data overrides)", fingerprint="path", exists="dir")
    sample: int | None = setting(None, "root null: generate this many synthetic pairs", min=1)


@dataclass
class CaptionConfig(CaptionSettings):
    use: Literal["vlm", "external", "auto"] = setting(
        "vlm", "vlm, external (caption.external file), or auto (VLM if available)"
    )


@dataclass
class ExtractConfig(ExtractSettings):
    vocab: Path | None = setting(
        None, "vocabulary YAML, or a shipped one by name: ivif, coco80 (required)", fingerprint="content",
        exists="file", kind="vocab",
    )  # fmt: skip


@dataclass
class ExportConfig(ExportSettings):
    config: str | None = setting(None, "dataset config name; null = pipeline name")
    out: Path | None = setting(None, "dataset folder; null = <run folder>/export", fingerprint="path")


@dataclass
class ReportConfig(ReportSettings):
    enabled: bool = setting(True, "write the review page")


def _meta(help: str, **kw: Any) -> dict[str, Any]:
    return {"help": help, **kw}


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


class _Where(Where):
    """Line numbers of keys in the YAML file, by key path, for error messages."""

    def __init__(self, file: Path, text: str) -> None:
        super().__init__(file.parent)
        self.file = file
        self.lines: dict[tuple[str, ...], int] = {}
        try:
            node = yaml.compose(text, Loader=NoAliasLoader)
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


@contextlib.contextmanager
def _at(where: _Where, key: tuple[str, ...], hint: str | None = None) -> Iterator[None]:
    """A stage's own check, its error reported at `key` of the YAML."""
    try:
        yield
    except EntityLabelError as e:
        raise where.error(key, str(e), hint=hint) from None


def _check_stage_values(cfg: PipelineConfig, where: _Where) -> None:
    """What a stage would refuse once it runs, refused at load with the stage's own check (after discover and
    hours of captioning is too late), each error at its key."""
    from ..caption.external import check_external_name
    from ..caption.prompts import prompts_for, resolve_prompts
    from ..devices import check_device
    from ..discover import LAYOUTS
    from ..export.layout import check_config_name
    from ..extract.vocab import load_vocab
    from ..extract.wordnet_forms import check_synsets_unless_cached
    from ..io import safe_child
    from ..resources import check_spacy_model

    with _at(where, ("name",)):  # it names the run folder outputs/<name>
        safe_child(Path("outputs"), cfg.name)
    named = ("export", "config") if cfg.export.config else ("name",)
    with _at(where, named, None if cfg.export.config else "or set export.config"):
        check_config_name(cfg.export_config)
    if cfg.data.layout is not None and cfg.data.layout not in LAYOUTS:
        raise where.error(("data", "layout"), f"unknown layout {cfg.data.layout!r}; choose one of {', '.join(LAYOUTS)}")
    c = cfg.caption
    if not c.modalities:
        raise where.error(("caption", "modalities"), "names no modality", hint="use vis, ir or both")
    if c.use in ("vlm", "auto"):
        with _at(where, ("caption", "prompts")):
            prompt_ids = {p.id for _, p in prompts_for(resolve_prompts(c.prompts), c.modalities)}
        if c.device != "auto":
            with _at(where, ("caption", "device")):
                check_device(c.device, option="device")
        if c.use == "vlm" and cfg.export.caption_prompt not in (None, *prompt_ids):
            raise where.error(("export", "caption_prompt"), f"{cfg.export.caption_prompt!r} is not one of the "
                              f"prompts captioned ({', '.join(sorted(prompt_ids))})")  # fmt: skip
    if c.external_name is not None:
        with _at(where, ("caption", "external_name")):
            check_external_name(c.external_name)
    with _at(where, ("extract", "vocab")):
        check_synsets_unless_cached(load_vocab(cfg.extract.vocab))
    if cfg.extract.spacy_model:
        with _at(where, ("extract", "spacy_model")):
            check_spacy_model(cfg.extract.spacy_model)
    _check_outside_data(cfg, where)


def _check_outside_data(cfg: PipelineConfig, where: _Where) -> None:
    """The run folder (and the export folder) must not be the dataset or inside it: discover fingerprints the
    dataset's file listing, so outputs written there would make every run stale again, forever."""
    if cfg.data.root is None:
        return
    root = cfg.data.root.resolve()
    for key, folder in ((("out",), cfg.run_dir), (("export", "out"), cfg.export_dir)):
        p = folder.resolve()
        if p == root or root in p.parents:
            raise where.error(key, f"{folder} is inside the dataset folder {cfg.data.root}",
                              hint="write outputs outside data.root (every run would see its own outputs as new "
                                   "data and start over)")  # fmt: skip


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
        raw = yaml.load(text, Loader=NoAliasLoader)  # safe: SafeLoader's constructors, no aliases
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise EntityLabelError(f"YAML syntax error: {problem}", path=where) from None
    w = _Where(p, text)
    if not isinstance(raw, dict):
        raise w.error((), "a pipeline file must be a mapping of keys (name, data, caption, ...)")
    for given, section, key in ((data, "data", "root"), (external, "caption", "external")):
        if given is not None and isinstance(raw.get(section), dict):  # overridden: the file's value is not checked
            raw[section] = {k: v for k, v in raw[section].items() if k != key}
    cfg: PipelineConfig = build(PipelineConfig, raw, (), w)
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
    _check_consistency(cfg, w)
    _check_stage_values(cfg, w)
    return cfg


def describe_schema() -> str:
    """Every key with its type and help, for docs and `--help`."""
    lines: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in fields_of(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{f.name}.")
                continue
            lines.append(f"{prefix}{f.name}: {f.metadata.get('help', '')}".rstrip(": "))

    walk(PipelineConfig, "")
    return "\n".join(lines)
