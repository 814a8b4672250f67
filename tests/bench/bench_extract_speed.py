"""Throughput and memory of the extract stage on the 20,000 real VLM captions.

    .venv/bin/python tests/bench/bench_extract_speed.py [--captions N] [--batch-size 256] [--skip-memory]

Measured side by side in one run, same spaCy model and batch size:
1. bare loop: `for doc in nlp.pipe(texts, batch_size=B): list(doc.noun_chunks)`, one process;
2. `run_extract(..., n_process=1)`: the whole stage (read, quality checks, parse, match, polarity, filters,
   votes, calibrated confidence, write incl. mention spans) -> ratio to (1), target >= 0.8;
3. `run_extract(..., n_process=2)` -> ratio to (2), target >= 1.6 (needs 2 free cores);
4. peak memory (ru_maxrss of a child process running the stage) for the captions and for the same file
   repeated 4 times (80,000 captions) -> ratio, target within 10% (the stage streams).
Captions/s are computed on wall-clock time including spaCy start-up for the stage (it is part of a run).
For (3) it also prints the CPU seconds of the main process and of the workers, and the rate those allow on
two otherwise idle cores: on a shared machine the wall-clock ratio mostly measures the other jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

_CHILD = """
import resource, sys, json
sys.path.insert(0, {repo!r})
from entitylabel.extract.stage import run_extract
res = run_extract({captions!r}, {vocab!r}, {out!r}, batch_size={bs})
print(json.dumps({{"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "captions": res.n_captions}}))
"""


def peak_memory(captions: Path, vocab: Path, out: Path, bs: int) -> tuple[int, int, float]:
    code = _CHILD.format(repo=str(REPO), captions=str(captions), vocab=str(vocab), out=str(out), bs=bs)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return info["maxrss_kb"], info["captions"], time.perf_counter() - t0


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captions", type=int, default=20000, help="use N captions spread over the files (default: all)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-parallel", action="store_true")
    args = ap.parse_args()

    from bench_extract_quality import load_captions

    from entitylabel.extract.stage import run_extract
    from entitylabel.resources import load_spacy

    rows = load_captions()
    rows = rows[:: max(1, len(rows) // args.captions)][: args.captions]  # a spread over all 10 files
    texts = [r["caption"] for r in rows]
    vocab = REPO / "vocab" / "coco80.yaml"
    print(
        f"{len(rows)} captions, batch size {args.batch_size}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        jsonl = tmp / "captions.jsonl"
        jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

        nlp = load_spacy()
        t0 = time.perf_counter()
        n_chunks = 0
        for doc in nlp.pipe(texts, batch_size=args.batch_size):
            n_chunks += sum(1 for _ in doc.noun_chunks)
        bare = len(texts) / (time.perf_counter() - t0)
        print(f"bare nlp.pipe + noun_chunks, 1 process: {bare:8.1f} captions/s ({n_chunks} noun chunks)")

        t0 = time.perf_counter()
        run_extract(jsonl, vocab, tmp / "one", batch_size=args.batch_size, n_process=1)
        one = len(texts) / (time.perf_counter() - t0)
        print(
            f"run_extract, n_process=1:               {one:8.1f} captions/s  ratio {one / bare:.2f} "
            f"(target >= 0.8: {'MET' if one / bare >= 0.8 else 'MISSED'})"
        )
        if not args.skip_parallel:
            s0, c0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            run_extract(jsonl, vocab, tmp / "two", batch_size=args.batch_size, n_process=2)
            two = len(texts) / (time.perf_counter() - t0)
            main_cpu, kids_cpu = _cpu(resource.RUSAGE_SELF) - s0, _cpu(resource.RUSAGE_CHILDREN) - c0
            print(
                f"run_extract, n_process=2:               {two:8.1f} captions/s  ratio {two / one:.2f} "
                f"(target >= 1.6: {'MET' if two / one >= 1.6 else 'MISSED'})"
            )
            # With other jobs on the cores, wall time says little; CPU time says how the work is split.
            bound = len(texts) / max(main_cpu, kids_cpu / 2)
            print(
                f"  CPU: main process {main_cpu:.1f} s, 2 workers {kids_cpu:.1f} s -> on 2 free cores at most "
                f"{bound:.1f} captions/s ({bound / one:.2f}x the measured one-process rate)"
            )
            same = all(
                (tmp / "one" / "entities" / f).read_bytes() == (tmp / "two" / "entities" / f).read_bytes()
                for f in ("entities.parquet", "labels.parquet", "rejected.parquet", "extract.json")
            )
            print(f"  outputs byte-identical to n_process=1: {same}")

        if not args.skip_memory:
            big = tmp / "captions_x4.jsonl"
            with open(big, "w", encoding="utf-8") as f:
                for _ in range(4):
                    f.write(jsonl.read_text(encoding="utf-8"))
            m1, n1, t1 = peak_memory(jsonl, vocab, tmp / "m1", args.batch_size)
            m4, n4, t4 = peak_memory(big, vocab, tmp / "m4", args.batch_size)
            ratio = m4 / m1
            print(
                f"peak memory {n1} captions: {m1 / 1024:.0f} MiB ({t1:.0f} s); {n4} captions: {m4 / 1024:.0f} MiB "
                f"({t4:.0f} s); ratio {ratio:.3f} (target <= 1.10: {'MET' if ratio <= 1.10 else 'MISSED'})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
