"""The transformers captioner on tiny random VLMs: batching, padding, greedy decoding, token accounting, OOM."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from caption_support import roadscene_manifest, tno_manifest  # noqa: F401 - fixtures
from PIL import Image
from tiny_vlms import tiny_blip, tiny_llava, tiny_vlm_root  # noqa: F401 - fixtures

from entitylabel.caption.backend import Captioner, load_captioner
from entitylabel.images import open_rgb
from entitylabel.pairs import load_pairs


@pytest.fixture(scope="module")
def images(tno_manifest: Path, roadscene_manifest: Path) -> list[Image.Image]:  # noqa: F811
    """Eight real images of different sizes and both modalities."""
    out = []
    for path in (tno_manifest, roadscene_manifest):
        m = load_pairs(path)
        for _, row in m.df.head(2).iterrows():
            out += [open_rgb(m.vis_abspath(row)), open_rgb(m.ir_abspath(row))]
    return out


@pytest.fixture(scope="module", params=["blip", "llava"])
def captioner(request: pytest.FixtureRequest, tiny_vlm_root: Path) -> Captioner:  # noqa: F811
    from tiny_vlms import tiny_vlm

    return load_captioner(str(tiny_vlm(request.param, tiny_vlm_root)), max_new_tokens=10, batch_size=4)


def _wordings(c: Captioner, n: int) -> list[str]:
    """Two prompts of different lengths, interleaved, so a batch needs padding."""
    short, long = (
        ("a photo of", "a thermal infrared image of")
        if c.mode == "prefix"
        else (
            "Describe it.",
            "This is a thermal image: brightness shows heat. Name every warm object.",
        )
    )
    return [short if i % 2 else long for i in range(n)]


def _as_tuples(out: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    return list(zip(out["caption"], out["n_tokens"], out["truncated"], out["error"], strict=True))


def test_batch_size_1_and_4_give_identical_captions(captioner: Captioner, images: list[Image.Image]) -> None:
    prompts = _wordings(captioner, len(images))
    captioner.batch_limit = 4
    batched = _as_tuples(captioner({"image": images, "prompt": prompts}))
    captioner.batch_limit = 1
    single = _as_tuples(captioner({"image": images, "prompt": prompts}))
    assert batched == single
    assert all(err is None and cap for cap, _, _, err in batched)
    assert len({cap for cap, *_ in batched}) >= 4  # the image matters: not one caption for all
    if captioner.mode == "chat":  # the mixed-length batch really was left padded
        mask = captioner.prepare(images[:2], prompts[:2]).inputs["attention_mask"]
        assert mask[:, 0].tolist().count(0) == 1 and mask[:, -1].all()


def test_checkpoint_sampling_settings_are_overridden(tiny_llava: Path, tmp_path: Path) -> None:  # noqa: F811
    sampled = tmp_path / "sampling-llava"
    shutil.copytree(tiny_llava, sampled)
    gc_path = sampled / "generation_config.json"
    gc = json.loads(gc_path.read_text())
    gc.update({"do_sample": True, "temperature": 1.7, "top_k": 50, "top_p": 0.9, "max_new_tokens": 3})
    gc_path.write_text(json.dumps(gc))
    plain = load_captioner(str(tiny_llava), max_new_tokens=12)
    c = load_captioner(str(sampled), max_new_tokens=12)
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    runs = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        runs.append(c({"image": [img], "prompt": ["Describe it."]})["caption"][0])
    assert len(set(runs)) == 1  # greedy, whatever the seed
    assert runs[0] == plain({"image": [img], "prompt": ["Describe it."]})["caption"][0]
    assert c.decoding["do_sample"] is False and c.decoding["max_new_tokens"] == 12
    assert json.loads(c.decoding_json())["num_beams"] == 1


def test_token_count_and_truncation_flag(tiny_llava: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    c = load_captioner(str(tiny_llava), max_new_tokens=5)
    eos, pad = c.tokenizer.eos_token_id, c.tokenizer.pad_token_id
    words = c.tokenizer.encode("the car on the road", add_special_tokens=False)[:3]
    new = torch.tensor(
        [
            [words[0], words[1], eos, pad, pad],  # stopped after 2 tokens
            [words[0], words[1], words[2], words[1], words[0]],  # hit the limit: truncated
            [eos, pad, pad, pad, pad],  # empty caption, not truncated
        ]
    )

    def fake_generate(**kw: Any) -> torch.Tensor:
        prompt = kw["input_ids"]
        for crit in kw["stopping_criteria"]:  # what generate does after the first new token
            crit(torch.cat([prompt, new[:, :1]], 1), None)
        return torch.cat([prompt, new], 1)

    monkeypatch.setattr(c.model, "generate", fake_generate)
    img = Image.new("RGB", (32, 32))
    out = c({"image": [img] * 3, "prompt": ["Describe it."] * 3})
    assert out["n_tokens"] == [2, 5, 0]
    assert out["truncated"] == [False, True, False]
    assert out["caption"][0] == c.tokenizer.decode(words[:2]).strip()
    assert out["caption"][2] == ""


def test_out_of_memory_halves_the_batch_and_says_so(
    tiny_llava: Path,  # noqa: F811
    images: list[Image.Image],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[dict[str, Any]] = []
    c = load_captioner(str(tiny_llava), max_new_tokens=6, batch_size=8, on_event=events.append)
    prompts = ["Describe it."] * len(images)
    c.batch_limit = 1
    reference = c({"image": images, "prompt": prompts})
    c.batch_limit = 8
    real = c.model.generate
    sizes: list[int] = []

    def small_gpu(**kw: Any) -> Any:
        sizes.append(kw["input_ids"].shape[0])
        if kw["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(**kw)

    monkeypatch.setattr(c.model, "generate", small_gpu)
    with caplog.at_level(logging.WARNING, logger="entitylabel.caption"):
        out = c({"image": images, "prompt": prompts})
    assert out == reference
    assert c.batch_limit == 2 and sizes[:3] == [8, 4, 2]
    assert [e["batch_size"] for e in events if e["event"] == "oom"] == [8, 4]
    assert "out of memory at batch size 8: retrying with batch size 4" in caplog.text


def test_plain_callable_takes_arrays_like_ray_batches(tiny_blip: Path, images: list[Image.Image]) -> None:  # noqa: F811
    c = load_captioner(str(tiny_blip), max_new_tokens=6, batch_size=2)
    prompts = ["a photo of"] * 3
    from_pil = c({"image": images[:3], "prompt": prompts})
    from_np = c({"image": np.stack([np.asarray(im.resize((64, 48))) for im in images[:3]]), "prompt": prompts})
    resized = c({"image": [im.resize((64, 48)) for im in images[:3]], "prompt": prompts})
    assert set(from_pil) == {"caption", "n_tokens", "truncated", "error"}
    assert from_np == resized and len(from_pil["caption"]) == 3
