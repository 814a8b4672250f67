"""Stage settings: one typed dataclass per stage, the single place a setting is declared.

Each `*Settings` class below lists the keyword settings of one stage function (`run_discover`, `run_caption`,
`run_extract`, `run_export`, `build_report`) with its type, default, help and limits. Everything else is
derived from it:
- the CLI options of the stage command (`cli_command`: `--min-support`, help, default; values go through the
  same check as the YAML);
- the pipeline-YAML keys of the stage's section and their one-line validation (`build`, used by
  `pipeline/config.py`, which adds the few pipeline-only keys such as `data.root` or `export.config`);
- the runner's staleness fingerprint (`fingerprint`): every field counts unless it is declared
  `fingerprint=False` (it only changes speed: batch sizes, devices, workers, processes);
- the stage function's keyword arguments (`kwargs`).
Adding a setting is one `setting(...)` line here (and the keyword in the stage function); tests fail when a
field and the function's keywords or defaults drift apart, or when a field does not reach the fingerprint.

How a value is fingerprinted is stated per field: as the value itself, or for a path by its `content` (file
or folder bytes), its `stamp` (names, sizes, mtimes: for folders of images, where reading bytes is the cost
we avoid), or the `path` string itself; prompts by their texts.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from .errors import EntityLabelError

DIGESTS = ("value", "content", "stamp", "path", "prompts")


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    fingerprint: bool | str = True,
    cli: tuple[str, ...] | None = None,
    cli_scale: int | None = None,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    exists: str | None = None,
    kind: str | None = None,
) -> Any:
    """One setting: `fingerprint` False (speed only), True (the value) or a digest name (see DIGESTS);
    `cli`: option names when not `--field-name`; `cli_scale`: the CLI value times this is the setting
    (`--shard-mb` for shard_bytes); `min`/`max`/`above`: limits of a number (see `number_problem`);
    `exists`: "file"/"dir" a path must be; `kind`: "vocab" or "prompts" (names resolved the same way in a
    YAML and on the command line)."""
    meta = {"help": help, "fingerprint": "value" if fingerprint is True else fingerprint}
    if meta["fingerprint"] is not False and meta["fingerprint"] not in DIGESTS:
        raise ValueError(f"fingerprint must be True, False or one of {DIGESTS}")  # a schema bug, not a user's
    meta.update({k: v for k, v in (("cli", cli), ("cli_scale", cli_scale), ("min", min), ("max", max),
                                   ("above", above), ("exists", exists), ("kind", kind)) if v is not None})  # fmt: skip
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DiscoverSettings:
    layout: str | None = setting(None, "layout: roadscene, msrs, m3fd, tno, generic (default: auto-detect)")
    dataset: str | None = setting(None, "dataset name used in pair ids (default: from the layout or folder)")
    splits: list[str] | None = setting(None, "keep only these splits (repeatable; default: all)", cli=("--split",))
    workers: int = setting(4, "threads that read and hash images", fingerprint=False, min=1)


@dataclass
class CaptionSettings:
    model: str | None = setting(None, "VLM: Hub id or local folder", cli=("--model", "-m"))
    revision: str | None = setting(None, "Hub revision (branch, tag or commit) of the model")
    prompts: list[str] | None = setting(
        None,
        "prompt set (default, objects, all), prompt id, prompt file or folder (default: the default set)",
        fingerprint="prompts",
        cli=("--prompts", "-p"),
        kind="prompts",
    )
    modalities: list[Literal["vis", "ir"]] = setting(
        help="modalities to caption (repeatable)", factory=lambda: ["vis", "ir"], cli=("--modality",)
    )
    batch_size: int = setting(8, "images per generate() call (halved on CUDA OOM)", fingerprint=False, min=1)
    max_new_tokens: int = setting(96, "token limit per caption; hitting it marks it truncated", min=1)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = setting("auto", "auto: bf16/fp16 on GPU, fp32 on CPU")
    device: str = setting("auto", "auto (this process's GPU, else CPU), cpu, cuda, cuda:1, mps", fingerprint=False)
    shard_size: int = setting(128, "pairs per caption shard (unit of resuming and of work split)", min=1)
    trust_remote_code: bool = setting(False, "allow a model's own Python code to run (review it first)")
    external: Path | None = setting(
        None, "captions made elsewhere (JSONL/CSV/Parquet)", fingerprint="content", exists="file"
    )
    external_name: str | None = setting(None, "provenance name of external captions: external:<name>")
    decode_workers: int = setting(2, "image-decoding threads feeding the model", fingerprint=False, min=1,
                                  cli=("--workers",))  # fmt: skip


@dataclass
class ExtractSettings:
    min_support: int = setting(1, "sources that must mention an entity for a label", min=1)
    min_confidence: float = setting(0.45, "calibrated confidence (estimated P(entity in pair)) needed for a label",
                                    min=0.0, max=1.0)  # fmt: skip
    target_precision: float | None = setting(
        None, "pick the threshold whose expected precision (mean calibrated confidence of the labels) is closest "
        "to this; replaces min_confidence", min=0.0, max=1.0)  # fmt: skip
    min_pairs: int = setting(1, "positive pairs an entity needs to stay in the label space", min=1)
    keep_hedged: bool = setting(False, "count hedged mentions ('appears to be a dog') as mentions")
    late_sentence: int = setting(4, "long captions: mentions first made in this sentence or later are weak; 0 = off",
                                 min=0)  # fmt: skip
    late_min_sentences: int = setting(6, "sentences a caption needs for late_sentence to apply", min=1)
    weak_modifiers: bool = setting(True, "a noun used as a modifier ('car' in 'car headlights') is a weak vote")
    n_process: int = setting(1, "worker processes for spaCy parsing", fingerprint=False, min=1)
    batch_size: int = setting(256, "captions per parsing batch", fingerprint=False, min=1)
    spacy_model: str | None = setting(None, "spaCy pipeline name or path (default: en_core_web_sm)")
    annotations: Path | None = setting(None, "the dataset's own boxes (YOLO/VOC/COCO; needs --pairs): audit the "
                                       "labels against them", fingerprint="stamp")  # fmt: skip


@dataclass
class ExportSettings:
    shard_bytes: int = setting(500 * 10**6, "maximum Parquet shard size (CLI: in MB)", min=1, cli=("--shard-mb",),
                               cli_scale=10**6)  # fmt: skip
    test_fraction: float = setting(0.2, "test share of the hashed split (datasets without split folders)",
                                   min=0.0, max=1.0)  # fmt: skip
    caption_prompt: str | None = setting(None, "prompt id whose captions fill caption_ir / caption_vis")
    repo_id: str | None = setting(None, "hub id shown in the card's loading example")
    annotations: Path | None = setting(None, "the dataset's own boxes (YOLO/VOC/COCO): entity labels from them "
                                       "instead of --entities", fingerprint="stamp")  # fmt: skip
    annotation_vocab: Path | None = setting(None, "vocabulary that maps annotation classes to entities (default: "
                                            "ivif)", fingerprint="content", kind="vocab")  # fmt: skip


@dataclass
class ReportSettings:
    page_size: int = setting(50, "pairs per page", min=1)
    thumb_size: int = setting(112, "thumbnail size in pixels (longest side)", min=16, max=512)
    fused_dir: Path | None = setting(
        None, "folder of fused images named by pair id or IR stem", fingerprint="stamp", exists="dir", cli=("--fused",)
    )
    max_rejected: int = setting(50, "rejected mentions listed per pair", min=0)
    workers: int = setting(4, "threads that make thumbnails", fingerprint=False, min=1)


@dataclass
class TrainSettings:
    """Run-level settings of `entitylabel train` (`fusion.train.train`); hyper-parameters live in `FusionConfig`.

    No pipeline stage: its defaults and checks stay those of `train` (which reports a bad budget itself)."""

    dataset_config: str | None = setting(None, "dataset config name (needed when the dataset has several)",
                                         cli=("--config",))  # fmt: skip
    split: str = setting("train", "split to train on (default train, or all splits when there is none)")
    max_minutes: float | None = setting(None, "training time budget; the LR schedule spans it", above=0)
    steps: int | None = setting(None, "optimizer steps budget (default 2000 when no --max-minutes)", min=0)
    resume: bool = setting(True, "resume from RUN_DIR/checkpoint when it exists")
    val: list[str] = setting(
        help="validation data (dataset's test split, manifest or folder); repeat. Keeps best/", factory=list
    )
    val_points: int = setting(4, "validations over the budget (last at end)", min=1, max=1000)
    val_pairs: int | None = setting(24, "at most this many pairs per --val set", min=1, max=100_000)
    status_steps: int = setting(100, "steps between status lines when stderr is not a terminal (0: none)",
                                fingerprint=False, cli=("--status-every",), min=0)  # fmt: skip


# the train command's settings: (class, the function it configures, that function's keywords that are not settings)
TRAIN_SETTINGS: tuple[type, str, frozenset[str]] = (
    TrainSettings,
    "entitylabel.fusion.train:train",
    frozenset({"config", "progress", "log"}),
)

# stage -> (settings class, "module:function" it configures, that function's keywords that are not settings)
STAGE_SETTINGS: dict[str, tuple[type, str, frozenset[str]]] = {
    "discover": (DiscoverSettings, "entitylabel.discover:run_discover", frozenset({"progress"})),
    "caption": (
        CaptionSettings,
        "entitylabel.caption.stage:run_caption",
        frozenset({"force", "root", "captioner", "progress"}),
    ),
    "extract": (ExtractSettings, "entitylabel.extract.stage:run_extract", frozenset({"pairs", "progress", "nlp"})),
    "export": (
        ExportSettings,
        "entitylabel.export.stage:run_export",
        frozenset({"captions", "entities", "overwrite", "root", "progress"}),
    ),
    "report": (
        ReportSettings,
        "entitylabel.report.html:build_report",
        frozenset({"out", "captions", "entities", "export_dir", "root", "title", "notice", "progress"}),
    ),
}


def stage_function(stage: str) -> Callable[..., Any]:
    import importlib

    module, name = STAGE_SETTINGS[stage][1].split(":")
    return getattr(importlib.import_module(module), name)


def fields_of(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def kwargs(obj: Any, cls: type | None = None) -> dict[str, Any]:
    """The stage function's keyword arguments: the fields of `cls` (default: the object's own class)."""
    return {f.name: getattr(obj, f.name) for f in fields_of(cls or type(obj))}


def fingerprint(obj: Any) -> dict[str, Any]:
    """The settings that shape a stage's outputs, as JSON-able digests (fields with fingerprint=False left out)."""
    out: dict[str, Any] = {}
    for f in fields_of(type(obj)):
        how = f.metadata.get("fingerprint", "value")
        if how is not False:
            out[f.name] = _digest(getattr(obj, f.name), how)
    return out


def _digest(value: Any, how: str) -> Any:
    from .io import hash_tree, stamp_tree

    if how == "prompts":  # by their texts (None: the default set), so editing a prompt file counts
        from .caption.prompts import resolve_prompts
        from .io import sha256_text

        return {p.id: sha256_text(f"{p.modality}\n{p.text}\n{p.prefix}") for p in resolve_prompts(value)}
    if value is None:
        return None
    if how == "content":
        return hash_tree(Path(value))
    if how == "stamp":
        return stamp_tree(Path(value))
    if how == "path":
        return str(Path(value).resolve())
    if isinstance(value, Path):
        raise TypeError("a Path setting must say how it is fingerprinted (content, stamp or path)")
    return value


# ---- validation: one checker for YAML values and CLI values --------------------------------------------


class Where:
    """Where a value came from, for error messages; the base a relative path is resolved against."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def error(self, path: tuple[str, ...], message: str, hint: str | None = None) -> EntityLabelError:
        key = ".".join(path)
        return EntityLabelError(f"{key}: {message}" if key else message, hint=hint)


class CliWhere(Where):
    """CLI values: errors name the option (`--min-support: must be at least 1`)."""

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(Path("."))
        self.options = options

    def error(self, path: tuple[str, ...], message: str, hint: str | None = None) -> EntityLabelError:
        opt = self.options.get(path[0], path[0]) if path else ""
        return EntityLabelError(f"{opt}: {message}" if opt else message, hint=hint)


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", Path: "a path"}
    if tp in names:
        return names[tp]
    if origin is list:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    return str(tp)


def convert(value: Any, tp: Any, path: tuple[str, ...], where: Where, meta: dict) -> Any:
    """Check `value` against the annotation `tp`; returns the converted value (paths resolved against the base)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else convert(value, args[0], path, where, meta)
    if value is None and dataclasses.is_dataclass(tp):  # an empty section (`data:`) means its defaults
        return build(tp, {}, path, where)
    if value is None:
        raise where.error(path, f"must not be empty (expected {type_name(tp)})")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise where.error(path, f"expected a mapping, got {type(value).__name__}")
        return build(tp, value, path, where)
    if origin is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise where.error(path, f"expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        item_meta = {k: v for k, v in meta.items() if k != "exists"}
        out = [convert(v, item, path + (str(i),), where, item_meta) for i, v in enumerate(value)]
        if meta.get("kind") == "prompts":
            return [_resolve_prompt(v, path + (str(i),), where) for i, v in enumerate(out)]
        return out
    return _scalar(value, tp, path, where, meta)


def _scalar(value: Any, tp: Any, path: tuple[str, ...], where: Where, meta: dict) -> Any:
    if typing.get_origin(tp) is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise where.error(path, f"expected one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise where.error(path, f"expected true or false, got {value!r}")
        return value
    if tp is int or tp is float:
        ok = isinstance(value, int) if tp is int else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            raise where.error(path, f"expected {type_name(tp)}, got {value!r}")
        problem = number_problem(value, meta)
        if problem:
            raise where.error(path, problem)
        return tp(value)
    if tp is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise where.error(path, f"expected a string, got {type(value).__name__}")
        return str(value)
    if tp is Path:
        if not isinstance(value, str | Path) or not str(value).strip():
            raise where.error(path, f"expected a path, got {value!r}")
        return _path(str(value), path, where, meta)
    raise TypeError(f"unsupported annotation {tp!r}")  # a bug in the schema, not a user error


def number_problem(value: float, limits: Mapping[str, Any]) -> str | None:
    """What is wrong with a number under its limits (`min`, `max` inclusive, `above` exclusive, `multiple_of`),
    None when nothing is. NaN and infinities are never a setting: they pass every comparison."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    lo, hi, above, step = (limits.get(k) for k in ("min", "max", "above", "multiple_of"))
    low = f"above {above}" if above is not None else f"at least {lo}" if lo is not None else None
    if (above is not None and value <= above) or (lo is not None and value < lo) or (hi is not None and value > hi):
        if low and hi is not None:
            rng = f"between {lo} and {hi}" if above is None else f"{low} and at most {hi}"
        else:
            rng = low or f"at most {hi}"
        return f"must be {rng}, got {value!r}"
    if step and value % step:
        return f"must be a multiple of {step}, got {value!r}"
    return None


_ENV_REF = re.compile(r"\$(\w+|\{[^}]*\})")


def expand_vars(value: str, path: tuple[str, ...], where: Where) -> str:
    """`$VAR`, `${VAR}` and a leading `~` of a path in a file (not from the command line: the shell did that);
    an unset variable is an error naming the key, never a folder literally named `$TMPDIR`."""
    if isinstance(where, CliWhere):
        return value
    for ref in _ENV_REF.findall(value):
        name = ref.strip("{}")
        if name not in os.environ:
            raise where.error(path, f"environment variable ${name} is not set (in {value!r})")
    return os.path.expanduser(os.path.expandvars(value))


def _path(value: str, path: tuple[str, ...], where: Where, meta: dict) -> Path:
    p = Path(expand_vars(value, path, where)).expanduser()
    p = Path(os.path.normpath(p if p.is_absolute() else where.base / p))
    if meta.get("kind") == "vocab" and not p.exists():
        from .extract.vocab import SHIPPED, resolve_vocab_path

        if value in SHIPPED:  # `vocab: ivif` means the shipped vocabulary, as `--vocab ivif` does
            p = resolve_vocab_path(value)
    kind = meta.get("exists")
    if kind and not (p.is_dir() if kind == "dir" else p.is_file()):
        raise where.error(path, f"{'folder' if kind == 'dir' else 'file'} not found: {p}")
    return p


def _resolve_prompt(spec: str, path: tuple[str, ...], where: Where) -> str:
    """A prompt spec that names a file or folder is resolved against the base; built-in ids stay as they are."""
    if not (spec.endswith(".txt") or "/" in spec):
        return spec
    spec = expand_vars(spec, path, where)
    p = Path(spec) if Path(spec).is_absolute() else where.base / spec
    if not p.exists():
        raise where.error(path, f"prompt file not found: {p}")
    return str(p)


def build(cls: type, data: dict[str, Any], path: tuple[str, ...], where: Where) -> Any:
    """Check a mapping of settings against `cls` (unknown keys, types, limits, files) and build it."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in fields_of(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key)
        if key not in fields:
            raise where.error(path + (key,), "unknown key", hint=f"known keys here: {', '.join(fields)}")
        values[key] = convert(value, hints[key], path + (key,), where, dict(fields[key].metadata))
    for name, f in fields.items():
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise where.error(path + (name,), "missing required key")
    return cls(**values)


def check_values(cls: type, **values: Any) -> None:
    """Check some settings of `cls` given to its function directly (not through the CLI or a YAML), with the
    same limits and messages."""
    build(cls, values, (), Where(Path(".")))


# ---- the CLI: typer options made from the fields ---------------------------------------------------------


def _cli_type(tp: Any) -> Any:
    """The type typer parses (choices are checked by `convert`, with the same message as in a YAML)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _cli_type(inner) | None
    if origin is list:
        return list[_cli_type(typing.get_args(tp)[0])]
    if origin is Literal:
        return str
    return tp


def option_names(f: dataclasses.Field) -> tuple[str, ...]:
    return f.metadata.get("cli") or ("--" + f.name.replace("_", "-"),)


def cli_parameters(cls: type) -> list[inspect.Parameter]:
    """One keyword-only typer option per field of `cls`."""
    import typer

    hints = typing.get_type_hints(cls)
    params = []
    for f in fields_of(cls):
        tp = hints[f.name]
        choices = typing.get_args(tp) if typing.get_origin(tp) is Literal else ()
        if typing.get_origin(tp) is list and typing.get_origin(typing.get_args(tp)[0]) is Literal:
            choices = typing.get_args(typing.get_args(tp)[0])
        help = f.metadata.get("help", "") + (f" ({', '.join(choices)})" if choices else "")
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if f.metadata.get("cli_scale") and default is not None:
            default = default // f.metadata["cli_scale"]
        names = option_names(f)
        if tp is bool and not f.metadata.get("cli"):  # --keep-hedged/--no-keep-hedged
            names = (f"{names[0]}/--no-{names[0][2:]}",)
        opt = typer.Option(*names, help=help[:1].upper() + help[1:] + ".")
        params.append(
            inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=typing.Annotated[_cli_type(tp), opt]
            )
        )
    return params


def from_cli(cls: type, values: dict[str, Any]) -> Any:
    """Build settings from parsed CLI values, checked like a YAML section (errors name the option)."""
    fields = fields_of(cls)
    data = {}
    for f in fields:
        v = values[f.name]
        if isinstance(v, tuple):
            v = list(v)
        if f.metadata.get("cli_scale") and v is not None:
            v = v * f.metadata["cli_scale"]
        data[f.name] = v
    return build(cls, data, (), CliWhere({f.name: option_names(f)[0] for f in fields}))


def cli_command(cls: type, name: str = "settings") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the command's own parameters plus one option per field of `cls`, passed as `name=cls(...)`."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != name]
        fields = {f.name for f in fields_of(cls)}

        def command(**values: Any) -> Any:
            settings = from_cli(cls, {k: values.pop(k) for k in list(values) if k in fields})
            return fn(**values, **{name: settings})

        command.__signature__ = inspect.Signature(own + cli_parameters(cls))  # type: ignore[attr-defined]
        command.__name__, command.__doc__, command.__module__ = fn.__name__, fn.__doc__, fn.__module__
        return command

    return wrap
