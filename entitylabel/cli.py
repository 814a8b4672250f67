"""Command-line interface: thin typer wrappers over the stage functions.

Each command parses options, calls one plain function from its stage module (tests call those
directly), and prints a short rich summary. `EntityLabelError` becomes one `error:` line and exit 2.
Stage modules are imported inside the commands so `entitylabel --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from . import __version__
from .errors import EntityLabelError
from .settings import (
    CaptionSettings,
    DiscoverSettings,
    ExportSettings,
    ExtractSettings,
    ReportSettings,
    TrainSettings,
    cli_command,
    kwargs,
)

app = typer.Typer(
    name="entitylabel",
    help="Entity-level pseudo-labels for infrared/visible image-fusion datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
vocab_app = typer.Typer(help="Validate and grow entity vocabularies.", no_args_is_help=True)
app.add_typer(vocab_app, name="vocab")

# No markup or emoji codes in what we print: paths, names and captions are the user's (a file named
# `[red]x` or `:thumbs_up:.jsonl` prints as it is). Styled lines pass markup=True and escape what they embed.
console = Console(stderr=True, markup=False, emoji=False)
out = Console(markup=False, emoji=False)


def _version(value: bool) -> None:
    if value:
        out.print(f"entitylabel {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],  # noqa: UP045 - typer needs Optional here on py3.10
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """entitylabel: discover -> caption -> extract -> export -> train/fuse/evaluate."""


# --- discover (stage 1) ---------------------------------------------------------------------------
# Stage settings (options after the command's own ones) come from entitylabel/settings.py.
@app.command()
@cli_command(DiscoverSettings)
def discover(
    root: Annotated[Path, typer.Argument(help="Dataset root (TNO, RoadScene, M3FD, MSRS or any IR/VIS folder).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write pairs.parquet into.")] = Path(
        "outputs/discover"
    ),
    strict: Annotated[bool, typer.Option(help="Exit non-zero when any problem is found.")] = False,
    settings: DiscoverSettings = DiscoverSettings(),  # noqa: B008 - replaced by the options it derives
) -> None:
    """Find IR/VIS pairs under ROOT; write pairs.parquet and problems.parquet."""
    from .discover import run_discover
    from .progress import progress_bar

    with progress_bar() as progress:
        result = run_discover(root, out_dir, **kwargs(settings), progress=progress)
    result.print_summary(out)
    if strict and len(result.problems):
        console.print(f"[red]error:[/] {len(result.problems)} problem(s) found and --strict is set", markup=True)
        raise typer.Exit(1)


# --- caption (stage 2) ----------------------------------------------------------------------------
@app.command()
@cli_command(CaptionSettings)
def caption(
    manifest: Annotated[Path, typer.Argument(help="pairs.parquet (or the discover run folder holding it).")],
    out_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", "-o", help="Caption shards folder (default: captions/ beside the manifest)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Redo every shard, even finished ones.")] = False,
    root: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Dataset root, if the images moved since discover."),
    ] = None,
    settings: CaptionSettings = CaptionSettings(),  # noqa: B008
) -> None:
    """Caption every pair (both modalities) with a VLM into resumable Parquet shards; or import captions.

    --model is a Hub id or a local folder: e.g. Qwen/Qwen2.5-VL-7B-Instruct on a GPU,
    Salesforce/blip-image-captioning-large on a CPU. Several GPUs or machines:
    `accelerate launch -m entitylabel caption ...` (each process takes its own shards).
    """
    from .caption.stage import run_caption
    from .progress import progress_bar

    target = out_dir or (manifest if manifest.is_dir() else manifest.parent) / "captions"
    with progress_bar() as progress:
        result = run_caption(manifest, target, **kwargs(settings), force=force, root=root, progress=progress)
    result.print_summary(out)


# --- extract (stage 3) and vocab ------------------------------------------------------------------
@app.command()
@cli_command(ExtractSettings)
def extract(
    captions: Annotated[
        Path, typer.Argument(help="Caption shard folder, or a Parquet/JSONL file (pair_id, source, caption).")
    ],
    vocab: Annotated[str, typer.Option("--vocab", help="Vocabulary YAML, or a shipped one by name: ivif, coco80.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder; entities/ is written inside.")],
    pairs: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--pairs", help="Pair manifest: captions of other pairs are reported, not used."),
    ] = None,
    settings: ExtractSettings = ExtractSettings(),  # noqa: B008
) -> None:
    """Turn captions into denoised entity labels: entities/ with labels, label space and rejections."""
    from .extract.stage import run_extract
    from .progress import progress_bar

    with progress_bar() as progress:
        result = run_extract(captions, vocab, out_dir, pairs=pairs, **kwargs(settings), progress=progress)
    result.print_summary(out)


@vocab_app.command("check")
def vocab_check(
    file: Annotated[Path, typer.Argument(help="Vocabulary YAML, or a shipped one by name: ivif, coco80.")],
    synsets: Annotated[bool, typer.Option(help="Also check every synset exists in WordNet 3.0.")] = True,
) -> None:
    """Validate a vocabulary; print its entity, form and meta counts (exit 2 with the error when broken)."""
    from .extract.vocab import check_vocab

    check_vocab(file, resolve_synsets=synsets).print_summary(out)


@vocab_app.command("suggest")
def vocab_suggest(
    rejected: Annotated[Path, typer.Argument(help="rejected.parquet from `entitylabel extract` (or its folder).")],
    vocab: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Vocabulary YAML or shipped name (default: the run's shipped one, else ivif)."),
    ] = None,
    top: Annotated[int, typer.Option(help="How many of the most frequent nouns to list.")] = 50,
    out_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", "-o", help="Also write a YAML snippet for the curator here."),
    ] = None,
) -> None:
    """List the most frequent out-of-vocabulary nouns with an entity proposed through WordNet hypernyms."""
    from .extract.suggest import print_suggestions, suggest, suggestions_yaml, vocab_for_rejected
    from .extract.vocab import load_vocab
    from .io import atomic_write_text

    voc = load_vocab(vocab or vocab_for_rejected(rejected))
    table = suggest(rejected, voc, top=top)
    print_suggestions(table, out, title=f"out-of-vocabulary nouns (vocabulary {voc.name} {voc.version})")
    if out_file is not None:
        atomic_write_text(out_file, suggestions_yaml(table, voc, rejected))
        out.print(f"wrote {out_file}", highlight=False)


# --- export / publish / download (stage 4) --------------------------------------------------------
@app.command()
@cli_command(ExportSettings)
def export(
    pairs: Annotated[Path, typer.Option("--pairs", help="pairs.parquet (or the discover run folder).")],
    config: Annotated[str, typer.Option("--config", help="Config name, e.g. roadscene, tno, msrs, m3fd.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Export folder (laid out as a hub dataset repo).")],
    captions: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--captions", help="Caption shards folder (or a Parquet/JSONL caption table)."),
    ] = None,
    entities: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--entities", help="Extract output folder (labels.parquet, label_space.json, ...)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace this config if the folder already has it.")] = False,
    settings: ExportSettings = ExportSettings(),  # noqa: B008
) -> None:
    """Write one config (images embedded, sharded Parquet) + plain tables + the dataset card into --out."""
    from .export.stage import run_export
    from .progress import progress_bar

    with progress_bar() as progress:
        result = run_export(pairs, out_dir, config, captions=captions, entities=entities, overwrite=overwrite,
                            **kwargs(settings), progress=progress)  # fmt: skip
    result.print_summary(out)


@app.command()
def publish(
    folder: Annotated[Path, typer.Argument(help="Export folder written by `entitylabel export`.")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Hub dataset repo, ORG/NAME.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded/changed.")] = False,
    private: Annotated[bool, typer.Option("--private", help="Create the repo private (new repos only).")] = False,
) -> None:
    """Upload FOLDER to the hub (token from HF_TOKEN or `hf auth login`; never printed)."""
    from .export.publish import publish as run_publish

    plan = run_publish(folder, repo_id, dry_run=dry_run, private=private)
    for line in plan.lines():
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    if plan.committed:
        out.print(f"published: {plan.committed}", highlight=False, markup=False, soft_wrap=True)
    elif not dry_run:
        out.print("nothing to upload: the hub already has these files", highlight=False, markup=False, soft_wrap=True)


@app.command()
def download(
    repo_or_path: Annotated[str, typer.Argument(help="Hub dataset id ORG/NAME, or a local export folder.")],
    config: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--config", help="Only this config."),
    ] = None,
    revision: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Hub revision (branch, tag or commit)."),
    ] = None,
) -> None:
    """Fetch a released dataset and print its configs, splits, pair counts and label frequencies."""
    from .export.load import download as run_download

    summary = run_download(repo_or_path, config, revision=revision, quiet=True)
    for line in summary.lines():
        out.print(line, highlight=False, markup=False, soft_wrap=True)


# --- train / fuse / evaluate (stage 5) ------------------------------------------------------------
@app.command("train")
@cli_command(TrainSettings)
def train_cmd(
    dataset: Annotated[str, typer.Argument(help="Released dataset: export folder or hub id.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder (checkpoint/, loss_curve.png).")],
    lambda_cls: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--lambda-cls", help="Weight of the entity BCE loss (0 switches the entity task off)."),
    ] = None,
    set_: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--set", help="Any hyper-parameter as KEY=VALUE, e.g. --set patch_size=128 (repeat)."),
    ] = None,
    settings: TrainSettings = TrainSettings(),  # noqa: B008
) -> None:
    """Train the compact entity-guided fusion model on a released dataset."""
    import warnings

    from .fusion.config import FusionConfig, check_value, parse_overrides
    from .fusion.train import train
    from .progress import progress_bar

    overrides = parse_overrides(set_)  # every value range-checked here, before any data is read
    if lambda_cls is not None:
        check_value("lambda_cls", lambda_cls, "--lambda-cls")
        overrides["lambda_cls"] = lambda_cls
    cfg = FusionConfig().replace(**overrides) if overrides else None
    with warnings.catch_warnings(record=True) as caught, progress_bar() as progress:
        warnings.simplefilter("always")
        # with a live bar, lines go above it; without one (logs, pipes) they are the progress report
        say = progress.console.print if not progress.disable else console.print
        result = train(dataset, out_dir, cfg, **kwargs(settings), progress=progress,
                       log=lambda line: say(line, markup=False, highlight=False, soft_wrap=True))  # fmt: skip
    if not result.is_main:  # other accelerate processes: the main one reports
        raise typer.Exit(1 if result.status == "nan" else 0)
    for w in caught:
        if issubclass(w.category, UserWarning):
            console.print(f"[yellow]warning:[/] {escape(str(w.message))}", markup=True, highlight=False)
    result.print_summary(out)
    if result.status == "nan":
        console.print(f"[red]error:[/] {escape(result.message)}", markup=True, highlight=False)
        raise typer.Exit(1)
    if result.status == "complete":
        out.print("nothing to do: the run already reached its budget (raise --steps / --max-minutes to go on)")


@app.command("fuse")
def fuse_cmd(
    run: Annotated[Path, typer.Argument(help="Training run folder or checkpoint folder.")],
    inputs: Annotated[
        list[str], typer.Argument(help="IR and VIS image of one pair, or one manifest / folder / dataset.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for <pair_id>.png and color/<pair_id>.png.")],
    labels: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Entity names 'a,b' for every pair, or a table (pair_id, entities); default: predicted."),
    ] = None,
    config: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--config", help="Dataset config name when INPUT is a released dataset."),
    ] = None,
    device: Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda.")] = "cpu",
) -> None:
    """Fuse IR/VIS pairs of any size with a trained model; writes gray and colour PNGs named by pair id."""
    from .fusion.fuse import fuse
    from .progress import progress_bar

    with progress_bar() as progress:
        result = fuse(run, inputs, out_dir, labels, dataset_config=config, device=device, progress=progress)
    result.print_summary(out)
    if result.failed:
        raise typer.Exit(2)


@app.command("evaluate")
def evaluate_cmd(
    fused_dir: Annotated[Path, typer.Argument(help="Folder of fused images named <pair_id>.* or <source stem>.*")],
    pairs: Annotated[Path, typer.Option("--pairs", help="Pair manifest (pairs.parquet or its run folder).")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Output table: *.csv or *.json.")],
    baseline: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--baseline", help="Also score a baseline fusion of the same pairs: mean or max (repeat)."),
    ] = None,
    mi_log_base: Annotated[str, typer.Option("--mi-log-base", help="MI log base: e (nats) or 2 (bits).")] = "e",
    name: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Method name in the table (default: the folder name)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Threads that score pairs.")] = 1,
    annotations: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="The dataset's own boxes (YOLO/VOC/COCO): adds the region metrics TC and Qabf_bg."),
    ] = None,
    vocab: Annotated[str, typer.Option(help="Vocabulary that maps annotation classes to entities.")] = "ivif",
) -> None:
    """Score fused images against their sources (EN SD SF AG MI SCD VIF Qabf SSIM Nabf [TC Qabf_bg]); print, save."""
    from .fusion.evaluate import evaluate, print_table
    from .progress import progress_bar

    if mi_log_base not in ("e", "2"):
        raise EntityLabelError(f"--mi-log-base must be e or 2, got {mi_log_base!r}")
    ann = _annotations(annotations, pairs, vocab) if annotations is not None else None
    with progress_bar() as progress:
        table = evaluate(
            fused_dir, pairs, out_file, baselines=tuple(baseline or ()), method=name,
            mi_log_base=mi_log_base, workers=workers, progress=progress, annotations=ann,
        )  # fmt: skip
    print_table(table, out)
    out.print(f"wrote {out_file}")


def _annotations(source: Path, pairs: Path, vocab: str) -> Any:
    """Read a dataset's annotations for the pairs of a manifest and print what they hold."""
    from .annotations import load_annotations
    from .pairs import load_pairs

    ann = load_annotations(source, load_pairs(pairs), vocab)
    console.print(ann.describe(), markup=False, highlight=False, soft_wrap=True)
    return ann


# --- run / report (pipelines) ---------------------------------------------------------------------
@app.command()
def run(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML, e.g. pipelines/roadscene.yaml.")],
    data: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--data", help="Dataset root (overrides data.root)."),
    ] = None,
    model: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--model", help="VLM hub id or local folder (overrides caption.model; captions with it)."),
    ] = None,
    out_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", "-o", help="Run folder (overrides out)."),
    ] = None,
    external: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--external", help="Caption file (JSONL/CSV/Parquet) to use instead of the VLM."),
    ] = None,
    from_stage: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--from", help="Start at this stage and redo it (earlier outputs must exist)."),
    ] = None,
    until_stage: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--until", help="Stop after this stage."),
    ] = None,
    force: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--force", help="Redo this stage even if up to date (repeatable; 'all' for every stage)."),
    ] = None,
) -> None:
    """Run discover -> caption -> extract -> export -> report; stages whose inputs and settings are unchanged
    are skipped. Stages: discover, caption, extract, export, report."""
    from .pipeline.runner import run_pipeline
    from .progress import progress_bar

    with progress_bar() as progress:
        result = run_pipeline(
            pipeline,
            data=data,
            model=model,
            out=out_dir,
            from_stage=from_stage,
            until_stage=until_stage,
            force=force or (),
            external=external,
            progress=progress,
            log=lambda m: console.print(m, highlight=False),
        )
    result.print_summary(out)


@app.command()
@cli_command(ReportSettings)
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (pairs.parquet, captions/, entities/).")],
    out_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", "-o", help="HTML file to write (default: RUN_DIR/report.html)."),
    ] = None,
    settings: ReportSettings = ReportSettings(),  # noqa: B008
) -> None:
    """Write a self-contained HTML review page: thumbnails, highlighted captions, entity chips, filters.

    Fused images: --fused, else RUN_DIR/fused when it exists.
    """
    from .progress import progress_bar
    from .report.html import build_report, report_result

    with progress_bar() as progress:
        path = build_report(run_dir, out_file, **kwargs(settings), progress=progress)
    report_result(path).print_summary(out)


def _interrupted() -> None:
    console.print("[yellow]interrupted[/]: finished outputs are kept; rerun to resume", markup=True)
    sys.exit(130)


def _invoke(argv: list[str] | None) -> Any:
    """Parse and run one command, letting every exception through.

    Not `app(...)`: typer's main turns Ctrl-C into a silent exit 130 (and click's into Abort) before we
    could print what happened to the outputs.
    """
    command = typer.main.get_command(app)
    with command.make_context("entitylabel", list(sys.argv[1:] if argv is None else argv)) as ctx:
        return command.invoke(ctx)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit status 2; Ctrl-C exits 130."""
    try:
        _invoke(argv)
    except EntityLabelError as e:
        console.print(f"[red]error:[/] {escape(str(e))}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except typer.Exit as e:  # --help, --version, a command's own exit status
        if e.exit_code:
            sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except OSError as e:
        if not e.filename:  # an OSError that names no file is a bug to see in full
            raise
        console.print(f"error: {e.filename}: {e.strerror or e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as e:
        # usage errors (typer's vendored click ClickException) know how to print themselves
        if callable(getattr(e, "show", None)) and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
