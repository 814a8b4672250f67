"""Which model wrote a caption, read from its source string (the caption stage's provenance contract).

- a VLM caption: `"{modality}:{prompt_id}:{model_name}"` (modality `vis` or `ir`) -> `model_name`;
- an external caption file: `"external:{name}:{modality}"` or `"external:{name}"` -> `"external:{name}"`;
- anything else (a hand-made table's free-form source) -> the source itself, a model of its own.
A model name may itself contain ":" (a local path); only the first two fields are split off.

Captions of one model (its prompts, decodings and both modalities) share that model's mistakes, so the
denoiser treats them as one witness with several views (confidence.py), never as independent voters.
"""

from __future__ import annotations

from collections.abc import Iterable

MODALITIES = frozenset({"vis", "ir"})


def model_of(source: str) -> str:
    """The model group of a caption source (see module docstring)."""
    parts = source.split(":", 2)
    if parts[0] == "external" and len(parts) >= 2:
        return f"external:{parts[1]}"
    if len(parts) == 3 and parts[0] in MODALITIES and parts[2]:
        return parts[2]
    return source


def group_by_model(sources: Iterable[str]) -> dict[str, list[str]]:
    """Model -> its sources, both sorted."""
    out: dict[str, list[str]] = {}
    for s in sorted(set(sources)):
        out.setdefault(model_of(s), []).append(s)
    return dict(sorted(out.items()))
