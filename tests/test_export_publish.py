"""publish / download against no network, a fake remote, and bad repo ids; the token is never printed."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import pytest
from export_fixtures import synthetic_pairs, write_entities
from huggingface_hub import constants
from huggingface_hub.hf_api import RepoFile

import entitylabel
from entitylabel.cli import main
from entitylabel.errors import EntityLabelError
from entitylabel.export import publish as pub
from entitylabel.export.stage import run_export
from entitylabel.io import sha256_file

SECRET = "hf_do_not_print_this_token_123"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    pairs = synthetic_pairs(tmp_path / "src", tmp_path / "a", "a", 4)
    out = tmp_path / "out"
    run_export(pairs, out, "a", entities=write_entities(pairs, tmp_path / "a" / "ents"))
    return out


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline mode off, and the hub endpoint a closed local port: what a machine without network sees."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)


def test_dry_run_offline_lists_local_files(folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    plan = pub.publish(folder, "my-org/ivif", dry_run=True)
    assert plan.remote_error == "HF_HUB_OFFLINE is set"
    assert "README.md" in plan.add and "data/a/train-00000-of-00001.parquet" in plan.add
    assert not any(p.startswith(".") for p in plan.add)
    main(["publish", str(folder), "--repo-id", "my-org/ivif", "--dry-run"])
    printed = capsys.readouterr().out
    assert "remote not reachable (HF_HUB_OFFLINE is set)" in printed and "add     README.md" in printed


def test_no_network_is_one_clear_line(folder: Path, no_network, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HF_TOKEN", SECRET)
    plan = pub.publish(folder, "my-org/ivif", dry_run=True)
    assert plan.remote_error.startswith("no network")
    with pytest.raises(SystemExit) as exit_info:
        main(["publish", str(folder), "--repo-id", "my-org/ivif"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.count("\n") == 0
    assert err.startswith("error: cannot reach the Hugging Face Hub (no network") and SECRET not in err
    with pytest.raises(EntityLabelError, match="cannot fetch dataset my-org/ivif from the hub"):
        entitylabel.download("my-org/ivif")


@pytest.mark.parametrize("repo_id", ["noslash", "a/b/c", "org/na me", "org/x--y", "/name", "org/", "org/x.git"])
def test_invalid_repo_id(folder: Path, repo_id: str, capsys) -> None:
    with pytest.raises(EntityLabelError, match="not of the form org/name"):
        pub.publish(folder, repo_id, dry_run=True)
    with pytest.raises(SystemExit) as exit_info:
        main(["publish", str(folder), "--repo-id", repo_id, "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith("error:") and "\n" not in err


def test_not_an_export_folder(tmp_path: Path) -> None:
    with pytest.raises(EntityLabelError, match="not an export folder"):
        pub.publish(tmp_path, "my-org/ivif", dry_run=True)


def _remote(folder: Path) -> dict[str, RepoFile]:
    shard = "data/a/train-00000-of-00001.parquet"
    files = {
        shard: RepoFile(
            path=shard,
            size=(folder / shard).stat().st_size,
            oid="x",
            lfs={"size": 1, "oid": sha256_file(folder / shard), "pointerSize": 1},
        ),
        "README.md": RepoFile(path="README.md", size=3, oid="old"),
        "data/a/train-00001-of-00002.parquet": RepoFile(path="data/a/train-00001-of-00002.parquet", size=1, oid="s"),
        "data/other/train-00000-of-00001.parquet": RepoFile(
            path="data/other/train-00000-of-00001.parquet", size=1, oid="o"
        ),
        ".gitattributes": RepoFile(path=".gitattributes", size=1, oid="g"),
    }
    return files


def test_plan_against_a_remote(folder: Path, monkeypatch) -> None:
    monkeypatch.setattr(pub, "hub_reachable", lambda: None)
    monkeypatch.setattr(pub, "_remote_files", lambda repo_id, token: _remote(folder))
    plan = pub.plan_publish(folder, "my-org/ivif")
    assert plan.remote_error is None
    assert plan.unchanged == ["data/a/train-00000-of-00001.parquet"]
    assert "README.md" in plan.change and "tables/a/export.json" in plan.add
    # a stale shard of a config we upload goes; other configs and repo files stay
    assert plan.delete == ["data/a/train-00001-of-00002.parquet"]


def test_upload_commits_changes_and_never_prints_the_token(folder: Path, monkeypatch, capsys) -> None:
    calls: dict = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, **kw):
            calls["create_repo"] = (repo_id, kw)

        def create_commit(self, repo_id, operations, **kw):
            calls["ops"] = operations
            return huggingface_hub.CommitInfo(
                commit_url="https://huggingface.co/datasets/my-org/ivif/commit/abc",
                commit_message="m",
                commit_description="",
                oid="abc",
            )

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(pub, "hub_reachable", lambda: None)
    monkeypatch.setattr(pub, "_remote_files", lambda repo_id, token: _remote(folder))
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: SECRET)
    main(["publish", str(folder), "--repo-id", "my-org/ivif", "--private"])
    printed = capsys.readouterr()
    assert SECRET not in printed.out + printed.err and "published:" in printed.out
    assert calls["token"] == SECRET and calls["create_repo"][1]["private"] is True
    added = {op.path_in_repo for op in calls["ops"] if isinstance(op, huggingface_hub.CommitOperationAdd)}
    deleted = {op.path_in_repo for op in calls["ops"] if isinstance(op, huggingface_hub.CommitOperationDelete)}
    assert "README.md" in added and "data/a/train-00000-of-00001.parquet" not in added
    assert deleted == {"data/a/train-00001-of-00002.parquet"}


def test_upload_without_token(folder: Path, monkeypatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(pub, "hub_reachable", lambda: None)
    monkeypatch.setattr(pub, "_remote_files", lambda repo_id, token: {})
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(EntityLabelError, match="no Hugging Face token found.*HF_TOKEN"):
        pub.publish(folder, "my-org/ivif")
