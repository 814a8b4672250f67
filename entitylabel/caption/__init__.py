"""Stage 2, caption: batched, resumable, sharded VLM captioning of both modalities (and external captions).

The names below load lazily, so reading the caption contract (`entitylabel.tables.CAPTION_SCHEMA`) from another
stage does not import torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Caption": "backend",
    "Captioner": "backend",
    "load_captioner": "backend",
    "ExternalResult": "external",
    "import_external": "external",
    "Prompt": "prompts",
    "resolve_prompts": "prompts",
    "CaptionResult": "stage",
    "run_caption": "stage",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
