"""Stage 2, caption: batched, resumable, sharded VLM captioning of both modalities (and external captions)."""

from .backend import Caption, Captioner, load_captioner
from .external import ExternalResult, import_external
from .prompts import Prompt, resolve_prompts
from .stage import CaptionResult, run_caption

__all__ = [
    "Caption",
    "CaptionResult",
    "Captioner",
    "ExternalResult",
    "Prompt",
    "import_external",
    "load_captioner",
    "resolve_prompts",
    "run_caption",
]
