"""The transformers captioner: AutoProcessor + AutoModelForImageTextToText, batched greedy generation.

`Captioner` is a plain callable, batch in and batch out (`{"image": [...], "prompt": [...]}` ->
`{"caption": [...], "n_tokens": [...], "truncated": [...], "error": [...]}`), so a Ray Data
`map_batches` actor can wrap it unchanged. The caption stage calls its two halves, `prepare` (processor,
CPU, in the loader thread) and `run` (generation), separately to overlap them.

Chat VLMs (LLaVA, Qwen2-VL/2.5-VL, Idefics3/SmolVLM, ...) get the prompt through the processor's chat
template; plain captioning models without one (BLIP) get the prompt's text prefix to continue.
Decoding is greedy (`do_sample=False`, one beam) with an explicit `max_new_tokens`: whatever sampling a
checkpoint's generation config asks for is switched off, and the settings used are recorded.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import EntityLabelError
from ..images import to_8bit
from .hub import ModelSource, resolve_model

log = logging.getLogger("entitylabel.caption")

# Processors that take one list of images per sample rather than a flat list.
_NESTED_IMAGES = {"idefics", "idefics2", "idefics3", "smolvlm", "mllama"}
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Caption:
    """One generated caption. `n_tokens` counts generated tokens before the end-of-sequence token;
    `truncated` is True when generation stopped at `max_new_tokens` without one."""

    caption: str | None
    n_tokens: int | None
    truncated: bool
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> Caption:
        return cls(None, None, False, error)


@dataclass
class Prepared:
    """A processed batch (CPU tensors) plus what made it, so it can be split and redone after an OOM."""

    images: list[Image.Image]
    texts: list[str]
    inputs: Any


class _PromptLength:
    """A stopping criterion that never stops: it records how many tokens preceded the first new one.

    `generate` returns prompt + new tokens for decoder-only models, but BLIP returns a rewritten prompt
    (its [CLS] swapped for [DEC], [SEP] dropped); the first call's length minus one is right for both.
    """

    def __init__(self) -> None:
        self.length: int | None = None

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        if self.length is None:
            self.length = input_ids.shape[1] - 1
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def pick_device(device: str = "auto") -> torch.device:
    """`auto`: this process's accelerator (`cuda:<local rank>` under accelerate/torchrun) else the CPU."""
    if device != "auto":
        from ..devices import check_device

        return check_device(device)
    from .distributed import process_state

    return process_state().device


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto`: bfloat16 on GPUs that have it, float16 on older GPUs, float32 elsewhere."""
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in _DTYPES:
        raise EntityLabelError(f"unknown --dtype {dtype!r}", hint=f"use auto or one of {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


class Captioner:
    """Batched captioning with one loaded model. Call `load_captioner` to build one from a model id/folder."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        name: str,
        revision: str | None,
        max_new_tokens: int = 96,
        batch_size: int = 8,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if max_new_tokens < 1:
            raise EntityLabelError("--max-new-tokens must be at least 1")
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.name = name
        self.revision = revision
        self.max_new_tokens = max_new_tokens
        self.batch_limit = max(1, batch_size)  # lowered for good after a CUDA out-of-memory error
        self.on_event = on_event
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.mode = "chat" if getattr(processor, "chat_template", None) else "prefix"
        self.nested_images = getattr(model.config, "model_type", "") in _NESTED_IMAGES
        self.tokenizer.padding_side = "left"  # decoder-only batches must end where generation starts
        if self.tokenizer.pad_token is None and self.tokenizer.eos_token is not None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.generation_config = self._greedy_config()
        self.eos_ids = self._eos_ids()
        self._texts: dict[str, str] = {}

    # -- settings -----------------------------------------------------------------------------------
    def _greedy_config(self) -> Any:
        gc = copy.deepcopy(self.model.generation_config)
        gc.do_sample = False
        gc.num_beams = 1
        gc.num_return_sequences = 1
        gc.max_new_tokens = self.max_new_tokens
        gc.max_length = None
        gc.min_new_tokens = None
        gc.temperature = gc.top_p = gc.top_k = gc.min_p = gc.typical_p = None
        if gc.pad_token_id is None:
            gc.pad_token_id = self.tokenizer.pad_token_id
        return gc

    def _eos_ids(self) -> list[int]:
        ids: set[int] = set()
        for v in (self.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            ids.update([v] if isinstance(v, int) else list(v or []))
        if getattr(self.model.config, "model_type", "") == "blip":  # BLIP's generate stops at [SEP]
            ids.add(self.model.config.text_config.sep_token_id)
        return sorted(ids)

    @property
    def decoding(self) -> dict[str, Any]:
        """What decides the output besides model and prompt; stored as JSON with every caption."""
        gc = self.generation_config
        return {
            "do_sample": False,
            "num_beams": 1,
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": gc.repetition_penalty,
            "no_repeat_ngram_size": gc.no_repeat_ngram_size,
            "prompt_mode": self.mode,
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    def decoding_json(self) -> str:
        return json.dumps(self.decoding, sort_keys=True, separators=(",", ":"))

    # -- the two halves -----------------------------------------------------------------------------
    def model_text(self, wording: str) -> str:
        """The full text for one image: the chat template around the instruction, or the bare prefix."""
        if wording not in self._texts:
            if self.mode == "chat":
                messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": wording}]}]
                self._texts[wording] = self.processor.apply_chat_template(
                    messages, add_generation_prompt=True, tokenize=False
                )
            else:
                self._texts[wording] = wording
        return self._texts[wording]

    def prepare(self, images: Sequence[Image.Image], wordings: Sequence[str]) -> Prepared:
        """Run the processor (CPU work: resize, normalise, tokenise) for one batch."""
        images = list(images)
        texts = [self.model_text(w) for w in wordings]
        imgs: list[Any] = [[im] for im in images] if self.nested_images else images
        inputs = self.processor(images=imgs, text=texts, return_tensors="pt", padding=True)
        return Prepared(images, list(wordings), inputs)

    def run(self, batch: Prepared) -> list[Caption]:
        """Generate for a prepared batch; halve it on CUDA out-of-memory; one bad item fails alone."""
        if len(batch.images) > self.batch_limit:
            return self._split(batch, self.batch_limit)
        try:
            return self._generate(batch.inputs, len(batch.images))
        except torch.OutOfMemoryError:
            if len(batch.images) == 1:
                _empty_cache()
                return [Caption.failed("out of memory even at batch size 1")]
            half = (len(batch.images) + 1) // 2
            self.batch_limit = min(self.batch_limit, half)
            _empty_cache()
            log.warning("out of memory at batch size %d: retrying with batch size %d", len(batch.images), half)
            self._event({"event": "oom", "batch_size": len(batch.images), "retry_batch_size": half})
            return self._split(batch, half)
        except (KeyboardInterrupt, SystemExit, EntityLabelError):
            raise
        except Exception as e:
            if len(batch.images) == 1:
                return [Caption.failed(f"generation failed: {type(e).__name__}: {e}")]
            return self._split(batch, 1)

    def _split(self, batch: Prepared, size: int) -> list[Caption]:
        out: list[Caption] = []
        for i in range(0, len(batch.images), size):
            out += self.caption(batch.images[i : i + size], batch.texts[i : i + size])
        return out

    def caption(self, images: Sequence[Image.Image], wordings: Sequence[str]) -> list[Caption]:
        """Prepare and run one batch; a batch the processor rejects is retried one image at a time."""
        if self.mode == "prefix" and len(set(wordings)) > 1:
            # Plain captioners (BLIP) overwrite position 0 with their start token, so a batch must not
            # be padded: caption each distinct prefix as its own sub-batch and put the rows back in order.
            out: list[Caption | None] = [None] * len(images)
            for w in dict.fromkeys(wordings):
                idx = [i for i, x in enumerate(wordings) if x == w]
                for i, c in zip(idx, self.caption([images[i] for i in idx], [w] * len(idx)), strict=True):
                    out[i] = c
            return [c for c in out if c is not None]
        try:
            batch = self.prepare(images, wordings)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:
            if len(images) == 1:
                return [Caption.failed(f"preprocessing failed: {type(e).__name__}: {e}")]
            return [c for i in range(len(images)) for c in self.caption(images[i : i + 1], wordings[i : i + 1])]
        return self.run(batch)

    def __call__(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
        """Batch in, batch out: `image` (PIL images or HxW[xC] uint8 arrays) and `prompt` (wordings)."""
        images = [
            to_8bit(im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im))).convert("RGB")
            for im in batch["image"]
        ]
        prompts = list(batch["prompt"])
        caps: list[Caption] = []
        for i in range(0, len(images), self.batch_limit):
            caps += self.caption(images[i : i + self.batch_limit], prompts[i : i + self.batch_limit])
        return {
            "caption": [c.caption for c in caps],
            "n_tokens": [c.n_tokens for c in caps],
            "truncated": [c.truncated for c in caps],
            "error": [c.error for c in caps],
        }

    # -- generation ---------------------------------------------------------------------------------
    def _generate(self, inputs: Any, n: int) -> list[Caption]:
        from transformers import StoppingCriteriaList

        feed = {
            k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
            if torch.is_tensor(v)
            else v
            for k, v in inputs.items()
        }
        marker = _PromptLength()
        with torch.inference_mode():
            out = self.model.generate(
                **feed, generation_config=self.generation_config, stopping_criteria=StoppingCriteriaList([marker])
            )
        if not torch.is_tensor(out):
            out = out.sequences
        start = out.shape[1] if marker.length is None else marker.length
        new = out[:, start:].cpu()
        is_eos = torch.isin(new, torch.tensor(self.eos_ids, dtype=new.dtype)) if self.eos_ids else None
        rows: list[list[int]] = []
        caps: list[tuple[int, bool]] = []
        for i in range(n):
            hits = is_eos[i].nonzero() if is_eos is not None else torch.empty(0)
            stop = int(hits[0]) if len(hits) else new.shape[1]
            rows.append(new[i, :stop].tolist())
            caps.append((stop, len(hits) == 0))
        texts = self.tokenizer.batch_decode(rows, skip_special_tokens=True)
        return [Caption(t.strip(), k, trunc) for t, (k, trunc) in zip(texts, caps, strict=True)]

    def _event(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(event)


def _empty_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_captioner(
    model: str,
    *,
    revision: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    max_new_tokens: int = 96,
    batch_size: int = 8,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> Captioner:
    """Load a VLM (Hub id or local folder) and its processor; one-line errors for what the user can fix."""
    source = resolve_model(model, revision)
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    proc, vlm = _load(source, revision, torch_dtype, trust_remote_code)
    return Captioner(
        vlm.to(dev),
        proc,
        name=source.name,
        revision=source.revision,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        on_event=on_event,
    )


def _load(source: ModelSource, revision: str | None, dtype: torch.dtype, trust_remote_code: bool) -> tuple[Any, Any]:
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    kw = {"revision": revision, "local_files_only": source.local_files_only, "trust_remote_code": trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(source.ref, **kw)  # first: it says clearly when code must run
        processor = _load_processor(AutoProcessor, source, kw)
        vlm = AutoModelForImageTextToText.from_pretrained(source.ref, config=config, dtype=dtype, **kw)
    except (OSError, ValueError, KeyError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "trust_remote_code" in str(e) and not trust_remote_code:
            raise EntityLabelError(
                f"model {source.name!r} ships its own code",
                hint="review it, then pass --trust-remote-code to run it",
            ) from None
        if "Unrecognized configuration class" in str(e) or "does not recognize this architecture" in str(e):
            raise EntityLabelError(
                f"model {source.name!r} is not an image-text-to-text model transformers can load ({msg})"
            ) from None
        hint = _hint(source)
        if "video processor" in msg.lower() and importlib.util.find_spec("torchvision") is None:
            hint = "this model's processor needs torchvision: pip install torchvision (matching your torch)"
        raise EntityLabelError(f"cannot load model {source.name!r}: {msg}", hint=hint) from None
    if not hasattr(processor, "image_processor"):
        raise EntityLabelError(f"model {source.name!r} has no image processor: not a vision-language model")
    return processor, vlm


def _load_processor(auto: Any, source: ModelSource, kw: dict[str, Any]) -> Any:
    """AutoProcessor; processors with a video half (Qwen2-VL, SmolVLM) fail obscurely without torchvision."""
    try:
        return auto.from_pretrained(source.ref, **kw)
    except (ImportError, AttributeError) as e:
        missing = [m for m in ("torchvision", "num2words") if importlib.util.find_spec(m) is None]
        raise EntityLabelError(
            f"cannot build the processor of model {source.name!r} ({type(e).__name__}: {str(e).splitlines()[0]})",
            hint=f"pip install {' '.join(missing)} (matching your torch)" if missing else None,
        ) from None


def _hint(source: ModelSource) -> str | None:
    if source.local_files_only:
        return "the local copy may be incomplete: download it again or pass --model DIR"
    return None
