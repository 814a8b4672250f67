"""A flat trainer: one loop, random patches, AdamW with warmup + cosine decay over the step or time budget.

Runs as is on a CPU, and data-parallel under `accelerate launch -m entitylabel train ...` (every process
draws its own patches; stop decisions are agreed across processes so none waits forever).
Writes RUN_DIR/checkpoint/ periodically (see `checkpoint.py`), `loss_curve.png` and `train.log.jsonl`.
With validation sets (`val=`, the CLI's `--val`), it scores them `val_points` times over the budget (the last at
the end; see `validate.py`), keeps the best checkpoint by that score in RUN_DIR/best/ and draws `val_curve.png`.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import EntityLabelError
from ..io import atomic_path, ensure_writable_dir
from . import losses
from .checkpoint import BEST_DIR, CHECKPOINT_DIR, TrainerState, load_training_state, read_config, save_checkpoint
from .config import FusionConfig
from .data import PairStore, PatchSampler, label_space, open_dataset, pick_split, warn_fusion_only
from .model import EntityFusionNet, entity_path_enabled
from .validate import ValSet, format_result, load_val_set, validate

DEFAULT_STEPS = 2000
LOG_FILE = "train.log.jsonl"
CURVE_FILE = "loss_curve.png"
VAL_CURVE_FILE = "val_curve.png"
STATUS_STEPS = 100  # one status line per this many steps when no progress bar is shown


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # "done", "complete" (already trained), "nan"
    step: int
    elapsed_s: float
    params: int
    labels: list[str]
    fusion_only: bool
    checkpoint: Path | None
    patches_per_s: float = 0.0
    last_loss: dict[str, float] = field(default_factory=dict)
    message: str = ""
    is_main: bool = True  # False in the other processes of a multi-process (accelerate) run
    best: dict[str, Any] = field(default_factory=dict)  # {"step", "score"} of RUN_DIR/best (with validation)
    last_val: dict[str, Any] = field(default_factory=dict)  # the last validation result

    def print_summary(self, console: Any) -> None:
        mode = "fusion only" if self.fusion_only else f"fusion + {len(self.labels)} entity labels"
        loss = ", ".join(f"{k} {v:.4f}" for k, v in self.last_loss.items() if k not in ("step", "lr"))
        console.print(f"trained {self.step} steps in {self.elapsed_s / 60:.1f} min ({mode}; {self.params:,} params)")
        if loss:
            console.print(f"last loss: {loss}")
        if self.patches_per_s:
            console.print(f"throughput: {self.patches_per_s:.1f} patches/s")
        if self.checkpoint is not None:
            console.print(f"checkpoint: {self.checkpoint}")
        if self.last_val:
            for line in format_result(self.last_val):
                console.print(f"validation (end) {line}", markup=False, highlight=False, soft_wrap=True)
        if self.best:
            console.print(f"best checkpoint: step {self.best['step']}, score {self.best['score']:+.4f} -> "
                          f"{self.run_dir / BEST_DIR} (what fuse uses)")  # fmt: skip


def lr_at(cfg: FusionConfig, step: int, frac: float) -> float:
    """Linear warmup over `warmup_steps`, then cosine from lr to lr*min_lr_ratio as `frac` goes 0 -> 1."""
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    cos = 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, frac))))
    return cfg.lr * warm * (cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * cos)


def write_loss_curve(history: list[dict[str, float]], path: Path) -> None:
    """Total loss and its unweighted parts against the step, log scale (matplotlib Agg, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    steps = [h["step"] for h in history]
    for key in ("loss", "intensity", "gradient", "ssim", "cls"):
        vals = [h.get(key) for h in history]
        if any(v is not None and v > 0 for v in vals):
            ys = [v if v is not None else float("nan") for v in vals]
            ax.plot(steps, ys, label=key, lw=1.2, marker="." if len(steps) < 30 else None)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (parts unweighted)")
    ax.grid(True, which="both", alpha=0.3)
    if history:
        ax.legend(loc="upper right")
    ax.set_title("entitylabel fusion training")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def write_val_curve(val_history: list[dict[str, Any]], best_step: int | None, path: Path) -> None:
    """Validation score per set (and their mean) against the step; 0 = pixel-max, the dot = best checkpoint."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    steps = [h["step"] for h in val_history]
    names = list(dict.fromkeys(n for h in val_history for n in h["sets"]))
    for name in names:
        ys = [h["sets"][name]["score"] if name in h["sets"] else float("nan") for h in val_history]
        ax.plot(steps, ys, label=name, lw=1.0, marker=".")
    ax.plot(steps, [h["score"] for h in val_history], label="mean (picks best)", lw=2.2, color="black", marker="o")
    ax.axhline(0.0, color="gray", ls="--", lw=1, label="pixel-max")
    if best_step is not None:
        ax.plot([best_step], [next(h["score"] for h in val_history if h["step"] == best_step)], "r*", ms=14)
    ax.set_xlabel("step")
    ax.set_ylabel("mean log(model / pixel-max), 6 metrics")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    ax.set_title("entitylabel fusion validation")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _status_line(step: int, steps: int | None, budget_s: float | None, elapsed: float, run_s: float,
                 done: int, batch: int, loss: float) -> str:  # fmt: skip
    """`step 300/2000 (15%) | loss 0.0312 | 21.3 patches/s | 2.4 min, ~13.1 min left`."""
    speed = done * batch / run_s if run_s > 0 else 0.0
    frac = max(step / steps if steps else 0.0, elapsed / budget_s if budget_s else 0.0)
    left = elapsed * (1 - frac) / frac / 60 if frac > 0 else float("nan")
    total = f"/{steps}" if steps else ""
    return (f"step {step}{total} ({100 * frac:.0f}%) | loss {loss:.4f} | {speed:.1f} patches/s | "
            f"{elapsed / 60:.1f} min, ~{left:.1f} min left")  # fmt: skip


def _resolve_config(
    run_dir: Path, config: FusionConfig | None, labels: list[str], resume: bool
) -> tuple[FusionConfig, Path | None]:
    ckpt = run_dir / CHECKPOINT_DIR
    if resume and (ckpt / "config.json").is_file():
        stored, _ = read_config(ckpt)
        if stored.labels and stored.labels != labels:
            raise EntityLabelError(
                f"the dataset's label space {labels} differs from the run's {stored.labels}",
                path=run_dir,
                hint="train into a new --out folder",
            )
        if config is not None:
            differ = [k for k, v in config.to_dict().items() if k != "labels" and stored.to_dict().get(k) != v]
            if differ:
                import warnings

                warnings.warn(f"resuming {run_dir} with its stored hyper-parameters; ignoring {differ}", stacklevel=3)
        return stored, ckpt
    cfg = config or FusionConfig()
    return cfg.replace(labels=list(labels)), None


def train(
    dataset: Any,
    out_dir: str | Path,
    config: FusionConfig | None = None,
    *,
    dataset_config: str | None = None,
    split: str = "train",
    max_minutes: float | None = None,
    steps: int | None = None,
    resume: bool = True,
    progress: Any = None,
    val: Sequence[ValSet | str | Path] = (),
    val_points: int = 4,
    val_pairs: int | None = 24,
    log: Callable[[str], None] | None = None,
    status_steps: int = STATUS_STEPS,
) -> TrainResult:
    """Train (or resume) a fusion model on `dataset` (object, export folder or hub id) into `out_dir`.

    Stops after `steps` optimizer steps or `max_minutes` of training, whichever comes first (both
    totals over resumes; `DEFAULT_STEPS` when neither is given). The learning-rate schedule spans that budget.
    `val`: validation sets (ValSet objects, or datasets / manifests / folders, at most `val_pairs` pairs each),
    scored at `val_points` evenly spaced points of the budget (time spent validating is not training time).
    `log` gets validation lines, and a status line every `status_steps` steps when `progress` shows no bar.
    """
    from accelerate import Accelerator

    if steps is not None and steps <= 0:
        raise EntityLabelError(f"--steps must be positive, got {steps}")
    if max_minutes is not None and max_minutes <= 0:
        raise EntityLabelError(f"--max-minutes must be positive, got {max_minutes}")
    if steps is None and max_minutes is None:
        steps = DEFAULT_STEPS
    if val_points < 1:
        raise EntityLabelError(f"--val-points must be at least 1, got {val_points}")
    run_dir = ensure_writable_dir(out_dir)
    val_sets = [
        v
        if isinstance(v, ValSet)  # the training dataset again (its test split): same --config
        else load_val_set(v, dataset_config=dataset_config if str(v) == str(dataset) else None, max_pairs=val_pairs)
        for v in val
    ]
    ds = pick_split(open_dataset(dataset, dataset_config), split)
    if len(ds) == 0:
        raise EntityLabelError("the dataset has no pairs", path=str(dataset))
    names = label_space(ds)
    store = PairStore(ds, names)
    if not names:
        warn_fusion_only("the dataset has no entity label space")
        names = []
    elif not store.any_labels():
        warn_fusion_only("no pair of the dataset carries an entity label")
        names = []
    cfg, ckpt = _resolve_config(run_dir, config, names, resume)
    store = PairStore(ds, cfg.labels if entity_path_enabled(cfg) else [])

    accelerator = Accelerator()
    main = accelerator.is_main_process
    table = None
    if entity_path_enabled(cfg) and ckpt is None:
        from .text_embed import embed_labels

        table = embed_labels(cfg.labels, cfg.entity_template)
    torch.manual_seed(cfg.seed)
    model = EntityFusionNet(cfg, entity_table=table)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = load_training_state(ckpt, model, opt) if ckpt is not None else TrainerState()
    model, opt = accelerator.prepare(model, opt)
    model.train()
    n_params = accelerator.unwrap_model(model).num_params()
    budget_s = max_minutes * 60.0 if max_minutes is not None else None
    sampler = PatchSampler(store, cfg)
    rng = np.random.default_rng([cfg.seed, state.step, accelerator.process_index])
    use_labels = entity_path_enabled(cfg)

    def fraction(step: int, elapsed: float) -> float:
        f = step / steps if steps else 0.0
        return max(f, elapsed / budget_s) if budget_s else f

    def agreed(flag: bool) -> bool:  # any process says yes -> all do
        if accelerator.num_processes == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
        return bool(accelerator.reduce(t, reduction="sum").item() > 0)

    def checkpoint() -> Path:
        accelerator.wait_for_everyone()
        path = run_dir / CHECKPOINT_DIR
        if main:
            path = save_checkpoint(run_dir, accelerator.unwrap_model(model), cfg, state, opt)
            write_loss_curve(state.history, run_dir / CURVE_FILE)
            with open(run_dir / LOG_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps({"event": "checkpoint", "step": state.step, "elapsed_s": round(state.elapsed_s, 2),
                                    "time": time.time()}) + "\n")  # fmt: skip
        return path

    def say(line: str) -> None:
        if log is not None and main:
            log(line)

    bar_shown = progress is not None and not getattr(progress, "disable", False)
    val_fracs = [(k + 1) / val_points for k in range(val_points)]
    next_val = sum(f <= fraction(state.step, state.elapsed_s) for f in val_fracs[:-1])

    def run_validation() -> None:
        """Score the validation sets (main process), keep the best checkpoint, log and draw the curve."""
        accelerator.wait_for_everyone()
        if main:
            net = accelerator.unwrap_model(model)
            res = validate(net, val_sets)
            state.val_history.append({"step": state.step, "score": res["score"], "sets": res["sets"]})
            better = not state.best or res["score"] > state.best["score"]
            if better:
                state.best = {"step": state.step, "score": res["score"]}
                save_checkpoint(run_dir, net, cfg, state, None, folder=BEST_DIR)
            write_val_curve(state.val_history, state.best.get("step"), run_dir / VAL_CURVE_FILE)
            with open(run_dir / LOG_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps({"event": "val", "step": state.step, "score": res["score"], "best": better,
                                    "sets": res["sets"], "time": time.time()}) + "\n")  # fmt: skip
            for line in format_result(res):
                say(f"validation step {state.step}{' (best)' if better else ''}: {line}")
        accelerator.wait_for_everyone()

    status, message = "done", ""
    last_ckpt: Path | None = ckpt
    start_step, t0 = state.step, time.monotonic()
    elapsed0 = state.elapsed_s
    last_save_t, last_save_step = t0, state.step
    window: list[dict[str, float]] = []
    total = steps if steps else int(budget_s or 0)
    task = (
        progress.add_task("train", total=total, completed=state.step if steps else int(elapsed0)) if progress else None
    )
    if fraction(state.step, elapsed0) >= 1.0:
        status = "complete"
    while status == "done":
        state.elapsed_s = elapsed0 + (time.monotonic() - t0)
        frac = fraction(state.step, state.elapsed_s)
        if agreed(frac >= 1.0):
            break
        lr = lr_at(cfg, state.step, frac)
        for g in opt.param_groups:
            g["lr"] = lr
        ir, vis, target = (t.to(accelerator.device) for t in sampler.batch(rng, cfg.batch_size))
        out = model(ir, vis, target if use_labels else None)
        loss, parts = losses.fusion_loss(out.fused, ir, vis, cfg, out.logits, target if use_labels else None)
        bad = agreed(not math.isfinite(float(loss.detach())))
        if not bad:
            opt.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            norm = accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            bad = agreed(norm is not None and not math.isfinite(float(norm)))
        if bad:
            status = "nan"
            kept = (
                f"the last good checkpoint (step {last_save_step}) is kept in {last_ckpt}"
                if last_ckpt
                else ("no checkpoint had been written yet")
            )
            message = f"loss became {float(loss.detach())} at step {state.step + 1}; training stopped; {kept}"
            break
        opt.step()
        state.step += 1
        window.append({"loss": float(loss.detach()), **parts})
        if len(window) >= cfg.log_steps:
            avg = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            state.history.append({"step": state.step, "lr": lr, **avg})
            window = []
        if task is not None:
            progress.update(task, completed=state.step if steps else int(state.elapsed_s),
                            description=f"train loss {float(loss.detach()):.4f}")  # fmt: skip
        if not bar_shown and status_steps > 0 and state.step % status_steps == 0:
            run_s = time.monotonic() - t0
            recent = [h["loss"] for h in state.history[-5:]] or [float(loss.detach())]
            say(_status_line(state.step, steps, budget_s, elapsed0 + run_s, run_s, state.step - start_step,
                             cfg.batch_size, float(np.mean(recent))))  # fmt: skip
        if val_sets and next_val < len(val_fracs) - 1:
            now_frac = fraction(state.step, elapsed0 + (time.monotonic() - t0))
            if agreed(now_frac >= val_fracs[next_val]):
                t_val = time.monotonic()
                run_validation()
                next_val += 1
                t0 += time.monotonic() - t_val  # validation time is not training time
        now = time.monotonic()
        if agreed(
            now - last_save_t >= cfg.checkpoint_minutes * 60 or state.step - last_save_step >= cfg.checkpoint_steps
        ):
            last_ckpt = checkpoint()
            last_save_t, last_save_step = time.monotonic(), state.step
    if status == "done":
        if window:
            avg = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            state.history.append({"step": state.step, "lr": lr_at(cfg, state.step, 1.0), **avg})
        run_time = time.monotonic() - t0
        if val_sets and not (state.val_history and state.val_history[-1]["step"] == state.step):
            run_validation()
        if not val_sets and (run_dir / BEST_DIR).is_dir() and main:  # chosen for an earlier budget: stale now
            shutil.rmtree(run_dir / BEST_DIR)
            state.best = {}
            warnings.warn(f"removed {run_dir / BEST_DIR} (this run went on without --val)", stacklevel=2)
        last_ckpt = checkpoint()
    else:
        run_time = time.monotonic() - t0
    done_steps = state.step - start_step
    return TrainResult(
        run_dir=run_dir,
        status=status,
        step=state.step,
        elapsed_s=state.elapsed_s,
        params=n_params,
        labels=list(cfg.labels),
        fusion_only=not use_labels,
        checkpoint=last_ckpt,
        patches_per_s=done_steps * cfg.batch_size / run_time if done_steps and run_time > 0 else 0.0,
        last_loss=state.history[-1] if state.history else {},
        message=message,
        is_main=main,
        best=dict(state.best),
        last_val=(
            {"score": state.val_history[-1]["score"], "sets": state.val_history[-1]["sets"]}
            if val_sets and state.val_history
            else {}
        ),  # fmt: skip
    )
