"""Checkpoints without pickle: safetensors tensors + JSON.

A checkpoint folder (`RUN_DIR/checkpoint/`) holds
- `model.safetensors`: the weights and the `entity_table` buffer (text embeddings of the label names);
- `config.json`: `{"kind", "format_version", "entitylabel_version", "train_step", "params", "config": {...}}`
  with the label space and every hyper-parameter (`FusionConfig`);
- for resuming only: `optimizer.safetensors` + `optimizer.json` (AdamW moments / param groups) and
  `trainer_state.json` (step, elapsed seconds, loss history).
The folder is built under a temporary name and swapped in (`io.swap_dir`), so a crash never leaves a half
checkpoint; a kill between the swap's two renames leaves the previous one as `.checkpoint.old`, which readers
fall back to and `recover_run` (called by `train` before it resumes) puts back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..errors import EntityLabelError
from ..io import atomic_dir, clean_stale_temps, dumps_json, recover_swap, swapped_old
from .config import FORMAT_VERSION, FusionConfig, check_format_version
from .model import EntityFusionNet

KIND = "entitylabel.fusion"
CHECKPOINT_DIR = "checkpoint"
BEST_DIR = "best"  # the best checkpoint by validation score (written only by runs with --val)
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
OPTIM_FILE = "optimizer.safetensors"
OPTIM_JSON = "optimizer.json"
STATE_FILE = "trainer_state.json"


@dataclass
class TrainerState:
    step: int = 0
    elapsed_s: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)  # {"step", "loss", parts..., "lr"}
    val_history: list[dict[str, Any]] = field(default_factory=list)  # {"step", "score", "sets"} per validation
    best: dict[str, Any] = field(default_factory=dict)  # {"step", "score"} of the checkpoint in BEST_DIR


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder for a run folder, a checkpoint folder or its model.safetensors / config.json.

    A run folder trained with validation gives its best checkpoint (`best/`), else its latest.
    """
    p = Path(path)
    if p.is_file() and p.name in (MODEL_FILE, CONFIG_FILE):
        p = p.parent
    # a swap killed between its renames leaves the previous folder as `.<name>.old` (see io.swap_dir)
    cands = (p, swapped_old(p), p / BEST_DIR, swapped_old(p / BEST_DIR), p / CHECKPOINT_DIR,
             swapped_old(p / CHECKPOINT_DIR))  # fmt: skip
    for cand in cands:
        if (cand / MODEL_FILE).is_file() and (cand / CONFIG_FILE).is_file():
            return cand
    if not p.exists():
        raise EntityLabelError("run or checkpoint not found", path=p)
    raise EntityLabelError(
        f"no {MODEL_FILE} + {CONFIG_FILE} here or in {CHECKPOINT_DIR}/", path=p, hint="pass a training run folder"
    )


def recover_run(run_dir: Path) -> None:
    """Before a run folder is trained into: remove dead writers' temporaries (a killed save leaves a full-size
    one) and put back a checkpoint whose swap was killed half-way, so resuming finds it."""
    clean_stale_temps(run_dir)
    for folder in (CHECKPOINT_DIR, BEST_DIR):
        recover_swap(run_dir / folder)


def read_config(ckpt_dir: Path) -> tuple[FusionConfig, dict[str, Any]]:
    """The stored config (refusing newer format versions) and the whole config.json."""
    path = ckpt_dir / CONFIG_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EntityLabelError(f"unreadable checkpoint config ({e})", path=path) from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND or not isinstance(meta.get("config"), dict):
        raise EntityLabelError(f"not an entitylabel fusion checkpoint config (kind != {KIND!r})", path=path)
    check_format_version(meta, path)
    return FusionConfig.from_dict(meta["config"], source=str(path)), meta


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[EntityFusionNet, FusionConfig]:
    """Model (eval mode) and config from a run folder or checkpoint; no text model and no pickle involved."""
    ckpt = resolve_checkpoint(path)
    cfg, _ = read_config(ckpt)
    try:
        tensors = load_file(ckpt / MODEL_FILE, device=str(device))
    except (SafetensorError, OSError) as e:
        raise EntityLabelError(f"unreadable weights ({e})", path=ckpt / MODEL_FILE) from None
    model = EntityFusionNet(cfg, entity_table=tensors.get("entity_table"))
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise EntityLabelError(f"weights do not match the stored config ({first})", path=ckpt / MODEL_FILE) from None
    return model.to(device).eval(), cfg


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        idx, _, name = key.partition(".")
        state.setdefault(int(idx), {})[name] = v
    for idx, st in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(st)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    run_dir: str | Path,
    model: EntityFusionNet,
    cfg: FusionConfig,
    state: TrainerState,
    optimizer: torch.optim.Optimizer | None = None,
    folder: str = CHECKPOINT_DIR,
) -> Path:
    """Write RUN_DIR/<folder>/ atomically (weights, config, and optimizer + trainer state for resuming)."""
    final = Path(run_dir) / folder
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "entitylabel_version": __version__,
        "train_step": state.step,
        "params": model.num_params(),
        "config": cfg.to_dict(),
    }
    with atomic_dir(final, overwrite=True) as tmp:
        save_file(weights, str(tmp / MODEL_FILE), metadata={"format": "pt", "kind": KIND})
        (tmp / CONFIG_FILE).write_text(dumps_json(meta), encoding="utf-8")
        if optimizer is not None:
            tensors, opt_meta = _flatten_optimizer(optimizer)
            save_file(tensors, str(tmp / OPTIM_FILE))
            (tmp / OPTIM_JSON).write_text(dumps_json(opt_meta), encoding="utf-8")
        st = {"step": state.step, "elapsed_s": state.elapsed_s, "history": state.history,
              "val_history": state.val_history, "best": state.best}  # fmt: skip
        (tmp / STATE_FILE).write_text(dumps_json(st), encoding="utf-8")
    return final


def load_training_state(
    ckpt_dir: Path, model: EntityFusionNet, optimizer: torch.optim.Optimizer | None
) -> TrainerState:
    """Restore weights (+ optimizer moments when stored) into `model` / `optimizer`; return the trainer state.

    A truncated or corrupt file is one line naming it (the run folder cannot be resumed; train into a new one).
    """
    hint = "the checkpoint is damaged: delete it or train into a new --out"

    def read(path: Path, loader: Any) -> Any:
        try:
            return loader(path)
        except (SafetensorError, OSError, ValueError, KeyError, RuntimeError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise EntityLabelError(f"unreadable checkpoint file ({first})", path=path, hint=hint) from None

    def load_json(path: Path) -> Any:
        return json.loads(path.read_text(encoding="utf-8"))

    read(ckpt_dir / MODEL_FILE, lambda p: model.load_state_dict(load_file(p), strict=True))
    if optimizer is not None and (ckpt_dir / OPTIM_FILE).is_file():
        meta = read(ckpt_dir / OPTIM_JSON, load_json)
        read(ckpt_dir / OPTIM_FILE, lambda p: optimizer.load_state_dict(_unflatten_optimizer(load_file(p), meta)))
    raw = read(ckpt_dir / STATE_FILE, load_json) if (ckpt_dir / STATE_FILE).is_file() else {}
    return TrainerState(
        step=int(raw.get("step", 0)),
        elapsed_s=float(raw.get("elapsed_s", 0.0)),
        history=list(raw.get("history", [])),
        val_history=list(raw.get("val_history", [])),
        best=dict(raw.get("best", {})),
    )
