"""Per-model reliability (Dawid-Skene across models) on simulated models, and a run on real VLM captions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from extract_support import nlp, vote_table, write_jsonl

from entitylabel.extract.denoise import model_reliability
from entitylabel.extract.votes import Vote


def _simulate(seed: int = 0, n_pairs: int = 400, n_entities: int = 12, prompts: int = 1):
    """3 reliable models (sens .85, spec .97) and 4 noisy ones (sens .6, spec .75), `prompts` captions each."""
    rng = np.random.default_rng(seed)
    quality = {f"good{i}": (0.85, 0.97) for i in range(3)} | {f"noisy{i}": (0.6, 0.75) for i in range(4)}
    truth = rng.random((n_pairs, n_entities)) < 0.3
    sources = {m: [f"vis:p{k}:{m}" for k in range(prompts)] for m in quality}
    votes: dict[tuple[str, str], dict[str, Vote]] = {}
    for m, (sens, spec) in quality.items():
        said = rng.random(truth.shape) < np.where(truth, sens, 1 - spec)
        for i, j in zip(*np.nonzero(said), strict=True):
            for s in sources[m]:  # one model's prompts repeat its mistakes
                votes.setdefault((f"p{i:04d}", f"e{j:02d}"), {})[s] = Vote(True, 0, False, 1, True)
    captions = {f"p{i:04d}": {s: (2, 20) for ss in sources.values() for s in ss} for i in range(n_pairs)}
    return vote_table(captions, votes), truth


def test_reliability_is_per_model_and_recovered_without_gold():
    table, _ = _simulate(prompts=2)
    rel, iterations = model_reliability(table.items(), table)
    assert sorted(rel) == sorted([f"good{i}" for i in range(3)] + [f"noisy{i}" for i in range(4)])  # models
    assert iterations > 0
    good = [m for m in rel if m.startswith("good")]
    noisy = [m for m in rel if m.startswith("noisy")]
    assert min(rel[m]["specificity"] for m in good) > max(rel[m]["specificity"] for m in noisy)
    assert min(rel[m]["sensitivity"] for m in good) > max(rel[m]["sensitivity"] for m in noisy)
    assert all(abs(rel[m]["specificity"] - 0.97) < 0.05 for m in good)


def test_no_em_over_one_models_captions():
    """Two models with six captions each: too few models for EM, whatever the number of captions."""
    captions = {"p": {f"{mod}:p{k}:{m}": (1, 5) for m in ("a", "b") for k in range(3) for mod in ("vis", "ir")}}
    votes = {("p", "dog"): {s: Vote(True, 0, False, 1, True) for s in captions["p"]}}
    assert model_reliability([("p", "dog")], vote_table(captions, votes)) == ({}, 0)


def test_integration_real_vlm_captions(shared_data, tmp_path, entitylabel_cache):
    """30 COCO images x 10 VLM captions with vocab/coco80.yaml: sane labels vs the CHAIR gold."""
    from pathlib import Path

    from entitylabel.extract.stage import run_extract

    vocab = Path(__file__).resolve().parents[1] / "vocab" / "coco80.yaml"
    if not vocab.is_file():
        pytest.skip("vocab/coco80.yaml not present")
    cap_dir = shared_data / "captions" / "vlm_captions_coco_pope"
    rows = []
    dec = json.JSONDecoder()
    for f in sorted(cap_dir.glob("Instruction*.json")):
        text, pos, n = f.read_text(encoding="utf-8"), 0, 0
        prompt, model = f.stem.split("_", 1)
        while n < 30:
            while text[pos].isspace():
                pos += 1
            obj, pos = dec.raw_decode(text, pos)
            rows.append(
                {"pair_id": f"coco-{obj['image_id']}", "source": f"vis:{prompt}:{model}", "caption": obj["text"]}
            )
            n += 1
    captions = write_jsonl(tmp_path / "captions.jsonl", rows)
    res = run_extract(captions, vocab, tmp_path / "run", nlp=nlp())
    gold_all = json.loads(
        (shared_data / "captions" / "coco_gold_objects" / "chair_gt_objects_coco2014.json").read_text()
    )
    labels = pd.read_parquet(tmp_path / "run" / "entities" / "labels.parquet")
    assert res.method == "calibrated" and len(labels) == 30
    tp = n_pred = n_gold = 0
    for pid, ents in zip(labels.pair_id, labels.entities, strict=True):
        gold = set(gold_all[pid.split("-", 1)[1]])
        tp += len(set(ents) & gold)
        n_pred += len(ents)
        n_gold += len(gold)
    assert tp / n_pred >= 0.75 and tp / n_gold >= 0.55, (tp, n_pred, n_gold)
    info = json.loads((tmp_path / "run" / "entities" / "extract.json").read_text())["denoise"]
    # sources grouped by model: five models of two prompts each
    assert {m: len(s) for m, s in info["models"].items()} == dict.fromkeys(
        ["instructblip", "llava", "minigpt-4", "mmgpt", "mplug"], 2
    )
    # the terse InstructBLIP hallucinates least, the verbose LLaVA and mPLUG-Owl most
    rel = info["reliability"]
    assert rel["instructblip"]["specificity"] > max(rel["llava"]["specificity"], rel["mplug"]["specificity"])
    # calibrated: the mean confidence of the labels is the precision it estimates, here within 0.1
    assert abs(info["estimated_precision"] - tp / n_pred) < 0.1, (info["estimated_precision"], tp / n_pred)
    rej = pd.read_parquet(tmp_path / "run" / "entities" / "rejected.parquet")
    assert {"meta", "not_in_vocabulary"} <= set(rej.reason)
