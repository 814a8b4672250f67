"""Find a model before loading it: a local folder, the local Hub cache, or the Hub itself.

Checked before transformers is imported, so a model that cannot be had fails at once with one line
instead of hanging on network retries: offline (`HF_HUB_OFFLINE=1`) and not cached, the Hub unreachable,
or an id the Hub does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import EntityLabelError

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ModelSource:
    """Where to load a model from. `ref` goes to from_pretrained; `revision` is a commit hash when known."""

    name: str  # what the user passed; recorded with every caption
    ref: str
    local_files_only: bool
    revision: str | None


def _local_hint(model: str, offline_env: bool = False) -> str:
    hint = f"download it where there is network (`hf download {model} --local-dir DIR`) and pass --model DIR"
    return hint + ", or unset HF_HUB_OFFLINE" if offline_env else hint


def snapshot_commit(path: Path) -> str | None:
    """The commit hash of a folder inside the Hub cache (`.../snapshots/<commit>/`), else None."""
    for part in (path, *path.parents):
        if part.parent.name == "snapshots" and _COMMIT.match(part.name):
            return part.name
    return None


def resolve_model(model: str, revision: str | None = None) -> ModelSource:
    """Locate `model` (a local folder or a Hub id), failing fast with a one-line error."""
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise EntityLabelError("not a model folder (no config.json)", path=path)
        return ModelSource(model, str(path), True, revision or snapshot_commit(path.resolve()))
    if not _REPO_ID.match(model) or model.startswith((".", "~")):
        raise EntityLabelError("model folder not found", path=model, hint="pass a Hub id or an existing folder")

    import huggingface_hub as hf
    from huggingface_hub import errors as hf_errors

    cached = hf.try_to_load_from_cache(model, "config.json", revision=revision)
    if isinstance(cached, str):
        return ModelSource(model, model, hf.constants.is_offline_mode(), snapshot_commit(Path(cached).parent))
    if hf.constants.is_offline_mode():
        raise EntityLabelError(
            f"model {model!r} is not available locally and HF_HUB_OFFLINE is set",
            hint=_local_hint(model, offline_env=True),
        )
    try:
        info = hf.HfApi().model_info(model, revision=revision, timeout=PROBE_TIMEOUT_S)
    except hf_errors.GatedRepoError:
        raise EntityLabelError(
            f"model {model!r} is gated on the Hub", hint="accept its terms and `hf auth login`, or pass --model DIR"
        ) from None
    except hf_errors.RevisionNotFoundError:
        raise EntityLabelError(f"model {model!r} has no revision {revision!r} on the Hub") from None
    except hf_errors.RepositoryNotFoundError:
        raise EntityLabelError(
            f"model {model!r} is not on the Hub (or is private)", hint="check the id, or pass --model DIR"
        ) from None
    except Exception as e:  # connection refused, DNS failure, timeout, proxy errors: all mean "no Hub"
        raise EntityLabelError(
            f"model {model!r} is not available locally and the Hub cannot be reached ({type(e).__name__})",
            hint=_local_hint(model),
        ) from None
    return ModelSource(model, model, False, info.sha)
