"""The three caption sources of the leave-one-source-out protocol, as rows the quality benchmark reads.

Each row is {pair_id, image_id, source, caption, set}: `set` names the (model, decoding) caption set, one
caption per image per set; `source` is the caption stage's "{modality}:{prompt or decoding}:{model}".
- pope: 5 VLMs x 2 prompts on the same 2,000 COCO images (pope_data.py); 10 sets.
- halc: LLaVA-1.5, MiniGPT-4, mPLUG-Owl2 x (greedy, HALC decoding, Woodpecker post-correction), 64 new
  tokens; each seed file is a different 500-image sample, the seeds of one set are pooled (an image that two
  files share keeps its first caption, 500-image files before the 100-image ones); 9 sets, 2,452 images.
  Woodpecker's box coordinates ("men([0.145, 0.2, ...])") are removed before either matcher reads the text.
- lessismore: 11 runs of detailed descriptions of the same 500 images (LLaVA-1.5 7B/13B greedy, VCD, OPERA,
  LLaVA v1, MiniGPT-v2 and the paper's fine-tunes that stop earlier); 11 sets.
Parses are cached per source (pope_data.parsed_docs, ~/.cache/entitylabel-bench).
"""

from __future__ import annotations

import json
import re

from pope_data import DATA, load_captions, read_json_stream

SOURCES = ("pope", "halc", "lessismore")
HALC_DIR = DATA / "vlm_captions_coco_halc"
LIM_DIR = DATA / "vlm_captions_coco_lessismore"
_BOXES = re.compile(r"\(\[[-0-9.,; \[\]]*\]\)")
LIM_MODEL = {  # run -> the model that wrote it (SOURCE.txt)
    "r1": "llava-1.5-7b", "r2": "llava-1.5-7b", "r3": "llava-1.5-7b", "r4": "llava-1.5-7b", "r5": "llava-1.5-7b",
    "r7": "llava-1.5-13b", "r8": "llava-1.5-13b", "r9": "llava-v1-7b", "r10": "llava-v1-7b",
    "r11": "minigpt-v2", "r12": "minigpt-v2",
}  # fmt: skip


def load_pope() -> list[dict]:
    rows = load_captions()
    for r in rows:
        _, prompt, model = r["source"].split(":")
        r["set"] = f"{model} {prompt.replace('Instruction', 'prompt')}"
    return rows


def load_halc() -> list[dict]:
    files = sorted(HALC_DIR.glob("*/*/*.json"), key=lambda f: ("samples_100_" in f.name, str(f)))
    rows, seen = [], set()
    for f in files:
        model, method = f.parent.parent.name, f.parent.name
        for o in read_json_stream(f):
            key = (model, method, int(o["image_id"]))
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                {
                    "pair_id": f"coco-{int(o['image_id'])}",
                    "image_id": int(o["image_id"]),
                    "source": f"vis:{method}:{model}",
                    "caption": _BOXES.sub("", o["caption"]),
                    "set": f"{model} {method}",
                }
            )
    return rows


def load_lessismore() -> list[dict]:
    rows = []
    for f in sorted(LIM_DIR.glob("r*.jsonl"), key=lambda f: int(f.name[1:].split("-")[0])):
        run = f.name.split("-")[0]
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                o = json.loads(line)
                image_id = int(re.sub(r"\D", "", o["image_id"]))
                rows.append(
                    {
                        "pair_id": f"coco-{image_id}",
                        "image_id": image_id,
                        "source": f"vis:{run}:{LIM_MODEL[run]}",
                        "caption": o["text"],
                        "set": f"{f.stem}",
                    }
                )
    return rows


LOADERS = {"pope": load_pope, "halc": load_halc, "lessismore": load_lessismore}


if __name__ == "__main__":
    import sys
    import time

    from pope_data import parsed_docs

    from entitylabel.resources import load_spacy

    nlp = load_spacy()
    for name in sys.argv[1:] or SOURCES:
        t0 = time.perf_counter()
        rows = LOADERS[name]()
        docs = parsed_docs(nlp, rows, source=name)
        print(f"{name}: {len(docs)} docs, {len({r['set'] for r in rows})} sets in {time.perf_counter() - t0:.1f} s")
