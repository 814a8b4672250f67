"""Upload an export folder to a hub dataset repository, or show what an upload would change.

The token comes from `HF_TOKEN` or the user's `hf auth login`; it is passed to huggingface_hub and never
printed or logged. Stale shards of a regenerated config (e.g. `train-00000-of-00003` after a rerun wrote
two shards) are deleted in the same commit, since the card's `data/<config>/<split>-*` globs would pick
them up otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EntityLabelError
from ..io import sha256_file
from . import layout

_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


def check_repo_id(repo_id: str) -> str:
    """`org/name` with the hub's characters; one clear line otherwise."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    ok = bool(_REPO_ID_RE.match(repo_id or ""))
    if ok:
        try:
            validate_repo_id(repo_id)
        except HFValidationError:
            ok = False
    if not ok or "--" in repo_id or ".." in repo_id or repo_id.endswith(".git"):
        raise EntityLabelError(
            f"repo id {repo_id!r} is not of the form org/name (letters, digits, '-', '_', '.')",
            hint="e.g. --repo-id my-org/ivif-entities",
        )
    return repo_id


@dataclass
class PublishPlan:
    """What an upload does: files to add or change, files to delete, files already identical."""

    repo_id: str
    folder: Path
    local: dict[str, int]  # path in repo -> size
    add: list[str] = field(default_factory=list)
    change: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    remote_error: str | None = None  # why the remote could not be compared (None: compared)
    committed: str | None = None  # commit URL after a real upload

    def lines(self) -> list[str]:
        out = []
        if self.remote_error:
            out.append(f"remote not reachable ({self.remote_error}): listing every local file as an upload")
        for tag, paths in (("add", self.add), ("change", self.change), ("delete", self.delete)):
            out += [f"{tag:7} {p}" + (f"  ({_size(self.local[p])})" if p in self.local else "") for p in paths]
        out.append(
            f"{self.repo_id}: {len(self.add)} to add, {len(self.change)} to change, {len(self.delete)} to delete, "
            f"{len(self.unchanged)} unchanged"
        )
        return out


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n} B"


def local_files(folder: Path) -> dict[str, int]:
    """Files that belong in the repo: everything but hidden paths (temporary folders, .git, caches)."""
    if not (folder / layout.CARD).is_file() or not (folder / layout.DATA).is_dir():
        raise EntityLabelError(
            "not an export folder (no README.md and data/)", path=folder, hint="run `entitylabel export` first"
        )
    files = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_symlink():  # export never writes links; one would upload (or hide) whatever it points to
            raise EntityLabelError(
                f"{rel.as_posix()} is a symbolic link; refusing to upload what it points to",
                path=folder,
                hint="remove the link (export writes plain files only)",
            )
        if p.is_file():
            files[rel.as_posix()] = p.stat().st_size
    return files


def _describe(e: BaseException) -> str:
    """A short reason without the exception's full text (which can be long; never holds the token)."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(e, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set"
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg[:120]}" if msg else type(e).__name__


def hub_reachable(timeout: float = 3.0) -> str | None:
    """None when the hub endpoint answers a TCP connect, else why not (fast: no 5x retry with backoff)."""
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # behind a proxy a direct connect proves nothing; let huggingface_hub try
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
    except OSError as e:
        return f"no network: {e.strerror or type(e).__name__}"
    return None


def _remote_files(repo_id: str, token: Any) -> dict[str, Any]:
    """path -> RepoFile of the remote repo; {} when it does not exist yet."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        tree = HfApi().list_repo_tree(repo_id, repo_type="dataset", recursive=True, token=token)
        return {f.path: f for f in tree if hasattr(f, "blob_id")}
    except RepositoryNotFoundError:
        return {}


def _same(local: Path, remote: Any) -> bool:
    from huggingface_hub.utils.sha import git_hash

    if remote.size != local.stat().st_size:
        return False
    if remote.lfs is not None:
        return remote.lfs.sha256 == sha256_file(local)
    return remote.blob_id == git_hash(local.read_bytes())


def plan_publish(folder: str | Path, repo_id: str, *, token: Any = None) -> PublishPlan:
    """Compare the folder with the remote repo (when reachable)."""
    folder = Path(folder)
    check_repo_id(repo_id)
    plan = PublishPlan(repo_id=repo_id, folder=folder, local=local_files(folder))
    try:
        reason = hub_reachable()
        remote = _remote_files(repo_id, token) if reason is None else None
    except Exception as e:  # DNS/connection errors, HTTP errors: reported, not raised
        reason, remote = _describe(e), None
    if remote is None:
        plan.remote_error = reason
        plan.add = list(plan.local)
        return plan
    for path in plan.local:
        if path not in remote:
            plan.add.append(path)
        elif _same(folder / path, remote[path]):
            plan.unchanged.append(path)
        else:
            plan.change.append(path)
    configs = {p.split("/")[1] for p in plan.local if p.startswith(f"{layout.DATA}/") and p.count("/") >= 2}
    owned = tuple(f"{top}/{c}/" for top in (layout.DATA, layout.TABLES) for c in sorted(configs))
    plan.delete = sorted(p for p in remote if p not in plan.local and p.startswith(owned))
    return plan


def publish(
    folder: str | Path,
    repo_id: str,
    *,
    dry_run: bool = False,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> PublishPlan:
    """Upload changed files and delete stale ones in one commit (creating the dataset repo when needed).

    `private` applies when the repo is created; an existing repo keeps its visibility.
    """
    from huggingface_hub import constants, get_token

    plan = plan_publish(folder, repo_id, token=token)
    if dry_run:
        return plan
    if constants.HF_HUB_OFFLINE:
        raise EntityLabelError("HF_HUB_OFFLINE is set, so nothing can be uploaded", hint="unset it to publish")
    if plan.remote_error:
        raise EntityLabelError(
            f"cannot reach the Hugging Face Hub ({plan.remote_error})", hint="check the network, then rerun"
        )
    token = token or get_token()
    if not token:
        raise EntityLabelError("no Hugging Face token found", hint="set HF_TOKEN or run `hf auth login`")
    if not (plan.add or plan.change or plan.delete):
        return plan
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    api = HfApi(token=token)
    ops: list[Any] = [
        CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(Path(folder) / p)) for p in plan.add + plan.change
    ]
    ops += [CommitOperationDelete(path_in_repo=p) for p in plan.delete]
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.create_commit(
            repo_id,
            operations=ops,
            repo_type="dataset",
            commit_message=commit_message
            or f"entitylabel export: {len(plan.add)} added, {len(plan.change)} changed, {len(plan.delete)} deleted",
        )
    except Exception as e:  # HTTP / network errors as one line
        raise EntityLabelError(f"upload to {repo_id} failed ({_describe(e)})") from None
    plan.committed = str(getattr(info, "commit_url", info))
    return plan
