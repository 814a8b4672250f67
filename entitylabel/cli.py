"""Command-line interface: thin typer wrappers over the stage functions.

Each command parses options, calls one plain function from its stage module (tests call those
directly), and prints a short rich summary. `EntityLabelError` becomes one `error:` line and exit 2.
Stage modules are imported inside the commands so `entitylabel --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import EntityLabelError

app = typer.Typer(
    name="entitylabel",
    help="Entity-level pseudo-labels for infrared/visible image-fusion datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
vocab_app = typer.Typer(help="Validate and grow entity vocabularies.", no_args_is_help=True)
app.add_typer(vocab_app, name="vocab")

console = Console(stderr=True)
out = Console()


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
@app.command()
def discover(
    root: Annotated[Path, typer.Argument(help="Dataset root (TNO, RoadScene, M3FD, MSRS or any IR/VIS folder).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write pairs.parquet into.")] = Path(
        "outputs/discover"
    ),
    layout: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Force a layout: roadscene, msrs, m3fd, tno, generic (auto-detected by default)."),
    ] = None,
    dataset: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Dataset name used in pair ids (default: from the layout or the folder name)."),
    ] = None,
    strict: Annotated[bool, typer.Option(help="Exit non-zero when any problem is found.")] = False,
    workers: Annotated[int, typer.Option(help="Threads that read and hash images.")] = 4,
) -> None:
    """Find IR/VIS pairs under ROOT; write pairs.parquet and problems.parquet."""
    from .discover import run_discover
    from .progress import progress_bar

    with progress_bar() as progress:
        result = run_discover(root, out_dir, layout=layout, dataset=dataset, workers=workers, progress=progress)
    result.print_summary(out)
    if strict and len(result.problems):
        console.print(f"[red]error:[/] {len(result.problems)} problem(s) found and --strict is set")
        raise typer.Exit(1)


# --- caption (stage 2) ----------------------------------------------------------------------------


# --- extract (stage 3) and vocab ------------------------------------------------------------------


# --- export / publish / download (stage 4) --------------------------------------------------------


# --- train / fuse / evaluate (stage 5) ------------------------------------------------------------


# --- run / report (pipelines) ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    try:
        rc = app(args=argv, standalone_mode=False)  # non-standalone click returns an Exit's code
    except EntityLabelError as e:
        console.print(f"[red]error:[/] {e}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: finished outputs are kept; rerun to resume")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as e:
        # usage errors (typer's vendored click ClickException) know how to print themselves
        if callable(getattr(e, "show", None)) and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            sys.exit(e.exit_code)
        raise
    if isinstance(rc, int) and rc:
        sys.exit(rc)


if __name__ == "__main__":
    main()
