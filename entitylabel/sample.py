"""A small synthetic IR/VIS sample that the project generates itself (real dataset images may not be shipped).

Each scene is drawn from a seeded recipe: sky, road, trees, people and cars, with the visible image in
colour and the infrared image as heat (people and engines warm, sky cold, vegetation cool). Because we know
what was drawn, the sample also gets a caption file describing each drawing: it is labelled
``external:synthetic-sample`` everywhere, so nobody mistakes it for VLM output. Deterministic: the same
`n` and `seed` give byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .io import atomic_path, atomic_write_text

SAMPLE_CAPTION_NOTE = "synthetic sample: caption written from the drawing recipe, not by a VLM"
_NUMBERS = ("no", "one", "two", "three", "four")


@dataclass(frozen=True)
class Scene:
    stem: str
    people: int
    cars: int
    trees: int
    dog: bool
    night: bool


def _scenes(n: int, seed: int) -> list[Scene]:
    rng = np.random.default_rng(seed)
    return [
        Scene(
            stem=f"{i + 1:04d}",
            people=int(rng.integers(0, 4)),
            cars=int(rng.integers(0, 3)),
            trees=int(rng.integers(0, 4)),
            dog=bool(rng.random() < 0.3),
            night=bool(rng.random() < 0.5),
        )
        for i in range(n)
    ]


def _draw(scene: Scene, size: tuple[int, int], seed: int) -> tuple[Image.Image, Image.Image]:
    """Render the visible (RGB) and infrared (L) images of one scene."""
    w, h = size
    rng = np.random.default_rng(seed)
    horizon = int(h * 0.45)
    vis = Image.new("RGB", size)
    ir = Image.new("L", size)
    dv, di = ImageDraw.Draw(vis), ImageDraw.Draw(ir)
    sky = (25, 30, 60) if scene.night else (135, 180, 230)
    dv.rectangle([0, 0, w, horizon], fill=sky)
    di.rectangle([0, 0, w, horizon], fill=20)
    dv.rectangle([0, horizon, w, h], fill=(70, 70, 75) if scene.night else (110, 110, 115))
    di.rectangle([0, horizon, w, h], fill=90)
    for k in range(scene.trees):  # cool vegetation along the horizon
        x = int((k + 0.5) * w / max(scene.trees, 1)) + int(rng.integers(-8, 8))
        dv.rectangle([x - 3, horizon - 10, x + 3, horizon + 6], fill=(80, 55, 30))
        dv.ellipse([x - 16, horizon - 45, x + 16, horizon - 8], fill=(30, 110, 40) if not scene.night else (15, 50, 20))
        di.ellipse([x - 16, horizon - 45, x + 16, horizon - 8], fill=60)
    for k in range(scene.cars):  # cars with warm engines and wheels
        x = int(w * (0.15 + 0.45 * k)) + int(rng.integers(0, 10))
        y = horizon + int(h * 0.2)
        colour = tuple(int(c) for c in rng.integers(60, 220, 3))
        dv.rectangle([x, y, x + 60, y + 24], fill=colour)
        dv.rectangle([x + 12, y - 14, x + 46, y], fill=colour)
        di.rectangle([x, y, x + 60, y + 24], fill=150)
        di.rectangle([x + 44, y + 4, x + 60, y + 20], fill=235)  # engine
        for cx in (x + 12, x + 48):
            dv.ellipse([cx - 6, y + 18, cx + 6, y + 30], fill=(15, 15, 15))
            di.ellipse([cx - 6, y + 18, cx + 6, y + 30], fill=170)
    for k in range(scene.people):  # people: faint in the dark visible image, bright in infrared
        x = int(w * (0.1 + 0.28 * k)) + int(rng.integers(0, 12))
        y = horizon + int(h * 0.05)
        coat = (45, 40, 40) if scene.night else tuple(int(c) for c in rng.integers(40, 200, 3))
        dv.ellipse([x + 2, y - 12, x + 12, y - 2], fill=(120, 100, 90) if scene.night else (220, 180, 150))
        dv.rectangle([x, y - 2, x + 14, y + 34], fill=coat)
        di.ellipse([x + 2, y - 12, x + 12, y - 2], fill=250)
        di.rectangle([x, y - 2, x + 14, y + 34], fill=215)
    if scene.dog:
        x, y = int(w * 0.78), horizon + int(h * 0.32)
        dv.ellipse([x, y, x + 22, y + 12], fill=(120, 80, 40))
        di.ellipse([x, y, x + 22, y + 12], fill=225)
    noise = rng.normal(0, 3, (h, w))
    ir = Image.fromarray(np.clip(np.asarray(ir, dtype=np.float64) + noise, 0, 255).astype(np.uint8), mode="L")
    return vis, ir


def _count(n: int, noun: str, plural: str) -> str:
    return f"{_NUMBERS[n]} {noun if n == 1 else plural}"


def _captions(scene: Scene) -> dict[str, str]:
    when = "at night" if scene.night else "in daylight"
    things = []
    if scene.people:
        things.append(_count(scene.people, "person", "people") + " walking")
    if scene.cars:
        things.append(_count(scene.cars, "car", "cars") + " on the road")
    if scene.trees:
        things.append(_count(scene.trees, "tree", "trees") + " along the horizon")
    vis = f"A street scene {when} with " + (", ".join(things) if things else "an empty road") + "."
    vis += " There are no bicycles." if not scene.dog else " A dog stands near the curb."
    heat = []
    if scene.people:
        heat.append(_count(scene.people, "warm pedestrian", "warm pedestrians"))
    if scene.cars:
        heat.append(_count(scene.cars, "car with a hot engine", "cars with hot engines"))
    if scene.dog:
        heat.append("what might be a dog")
    ir = (
        "A thermal image of a road showing "
        + (" and ".join(heat) if heat else "no warm objects")
        + "; the sky is cold."
    )
    return {"vis": vis, "ir": ir}


def make_sample(dest: str | Path, n: int = 8, *, size: tuple[int, int] = (256, 192), seed: int = 0) -> Path:
    """Write `n` synthetic pairs as `dest/ir/*.png` + `dest/vi/*.png` (the TNO layout) and `dest/captions.jsonl`."""
    dest = Path(dest)
    (dest / "ir").mkdir(parents=True, exist_ok=True)
    (dest / "vi").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, scene in enumerate(_scenes(n, seed)):
        vis, ir = _draw(scene, size, seed * 100_003 + i)
        for img, sub in ((vis, "vi"), (ir, "ir")):
            with atomic_path(dest / sub / f"{scene.stem}.png") as tmp:
                img.save(tmp, format="PNG")
        for modality, text in _captions(scene).items():
            lines.append(
                json.dumps(
                    {"image": f"{scene.stem}.png", "modality": modality, "caption": text, "note": SAMPLE_CAPTION_NOTE},
                    sort_keys=True,
                )
            )
    atomic_write_text(dest / "captions.jsonl", "\n".join(lines) + "\n")
    return dest
