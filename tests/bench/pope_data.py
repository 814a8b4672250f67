"""POPE captions, CHAIR gold and a parsed-caption cache shared by the extract quality benchmark and the fit.

The captions (5 VLMs x 2 prompts on the same 2,000 COCO val2014 images) are parsed once with spaCy and kept
as DocBin files in `~/.cache/entitylabel-bench/pope-<spacy model>/` (outside the repository), so tuning
iterations re-run only the cheap mention step. The protocol splits images by `image_id` parity: even ids
tune (fit the shipped confidence coefficients), odd ids report.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
# ../shared/data beside the clone (CI); a git worktree one level further down finds it one level up
DATA = next((d for d in (REPO.parent / "shared", REPO.parents[1] / "shared") if d.is_dir()), REPO.parent / "shared")
DATA = DATA / "data" / "captions"
CAPTION_DIR = DATA / "vlm_captions_coco_pope"
GOLD = DATA / "coco_gold_objects" / "chair_gt_objects_coco2014.json"
SYNONYMS = DATA / "chair_synonyms" / "synonyms.txt"
CACHE = Path(os.environ.get("ENTITYLABEL_BENCH_CACHE", Path.home() / ".cache" / "entitylabel-bench"))
MODEL_OF = {  # file stem suffix -> model name as the caption stage would record it
    "instructblip": "instructblip",
    "llava": "llava",
    "minigpt-4": "minigpt-4",
    "mmgpt": "multimodal-gpt",
    "mplug": "mplug-owl",
}


def read_json_stream(path: Path) -> list[dict]:
    """JSON Lines or concatenated pretty-printed objects (Instruction1_llava.json), via raw_decode."""
    text = path.read_text(encoding="utf-8")
    dec = json.JSONDecoder()
    out, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        obj, pos = dec.raw_decode(text, pos)
        out.append(obj)


def source_of(stem: str) -> str:
    """ "Instruction2_llava" -> "vis:Instruction2:llava", the caption stage's "{modality}:{prompt}:{model}"."""
    prompt, model = stem.split("_", 1)
    return f"vis:{prompt}:{MODEL_OF[model]}"


def load_captions() -> list[dict]:
    """Rows {pair_id, image_id, source, caption} for every caption file, in file then question order."""
    rows = []
    for f in sorted(CAPTION_DIR.glob("Instruction*.json")):
        for o in read_json_stream(f):
            rows.append(
                {
                    "pair_id": f"coco-{o['image_id']}",
                    "image_id": int(o["image_id"]),
                    "source": source_of(f.stem),
                    "caption": o["text"],
                }
            )
    return rows


def load_gold(pair_ids) -> dict[str, set[str]]:
    gold = json.loads(GOLD.read_text())
    return {p: set(gold[p.split("-", 1)[1]]) for p in pair_ids}


def parsed_docs(nlp, rows: list[dict], log=print, source: str = "pope") -> list:
    """spaCy Docs for every row's caption, parsed once and cached as a DocBin keyed by source and model."""
    from spacy.tokens import DocBin

    name = f"{source}-{nlp.meta.get('name', 'x')}-{nlp.meta.get('version', 'x')}"
    path = CACHE / f"{name}.spacy"
    if path.is_file():
        docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
        if len(docs) == len(rows) and all(d.text == r["caption"] for d, r in zip(docs, rows, strict=True)):
            return docs
    log(f"parsing {len(rows)} captions once (cache: {path})")
    docs = list(nlp.pipe((r["caption"] for r in rows), batch_size=256))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    DocBin(store_user_data=False, docs=docs).to_disk(tmp)
    tmp.replace(path)
    return docs


if __name__ == "__main__":
    import time

    from entitylabel.resources import load_spacy

    t0 = time.perf_counter()
    rows = load_captions()
    docs = parsed_docs(load_spacy(), rows)
    print(f"{len(docs)} docs in {time.perf_counter() - t0:.1f} s")
