"""Two CPU processes (torchrun, gloo) split the shards: no overlap, no gap, same bytes as one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from caption_support import REPO, shard_bytes, tno_manifest  # noqa: F401 - fixtures
from tiny_vlms import tiny_llava, tiny_vlm_root  # noqa: F401 - fixtures

from entitylabel.caption import run_caption
from entitylabel.caption.distributed import my_share
from entitylabel.caption.runlog import read_log


def test_round_robin_shares_are_disjoint_and_complete() -> None:
    shards = list(range(11))
    shares = [my_share(shards, r, 3) for r in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert sorted(sum(shares, [])) == shards


def test_two_processes_split_the_shards(tiny_llava: Path, tno_manifest: Path, tmp_path: Path) -> None:  # noqa: F811
    args = ["--model", str(tiny_llava), "--shard-size", "1", "--max-new-tokens", "6", "--batch-size", "2"]
    out = tmp_path / "two"
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "entitylabel", "caption", str(tno_manifest)]
        + ["--out", str(out), *args],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = read_log(out / "caption.log.jsonl")
    starts = {e["rank"]: e for e in log if e["event"] == "start"}
    assert sorted(starts) == [0, 1] and {e["world"] for e in starts.values()} == {2}
    by_rank: dict[int, list[str]] = {0: [], 1: []}
    for e in log:
        if e["event"] == "shard":
            by_rank[e["rank"]].append(e["shard"])
    # each rank did exactly its own share: shard i on rank i % 2, nothing twice, nothing left out
    assert sorted(by_rank[0]) == ["shard-00000", "shard-00002", "shard-00004"]
    assert sorted(by_rank[1]) == ["shard-00001", "shard-00003", "shard-00005"]

    single = run_caption(
        tno_manifest, tmp_path / "one", model=str(tiny_llava), shard_size=1, max_new_tokens=6, batch_size=2
    )
    assert len(single.computed) == 6
    assert shard_bytes(out) == shard_bytes(tmp_path / "one")
