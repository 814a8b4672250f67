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
from ..settings import TrainSettings, check_values
from . import losses
from .checkpoint import (
    BEST_DIR,
    CHECKPOINT_DIR,
    TrainerState,
    load_training_state,
    read_config,
    recover_run,
    save_checkpoint,
)
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
    for key in ("loss", "intensity", "gradient", "overshoot", "contrast", "ssim", "cls"):
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
    """Mean rank over the ten metrics per set (among the model and its three references) and the score's mean
    rank, against the step; 1 = best of the four, the star = best checkpoint."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    steps = [h["step"] for h in val_history]
    names = list(dict.fromkeys(n for h in val_history for n in h["sets"]))
    for name in names:
        ys = [h["sets"][name]["rank"] if name in h["sets"] else float("nan") for h in val_history]
        ax.plot(steps, ys, label=name, lw=1.0, marker=".")
    ax.plot(steps, [-h["score"] for h in val_history], label="mean (picks best)", lw=2.2, color="black", marker="o")
    if best_step is not None:
        ax.plot([best_step], [-next(h["score"] for h in val_history if h["step"] == best_step)], "r*", ms=14)
    ax.set_xlabel("step")
    ax.set_ylabel("mean rank of 4 over ten metrics (lower is better)")
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


def _default_budget(steps: int | None, max_minutes: float | None) -> int | None:
    """`DEFAULT_STEPS` when neither steps nor minutes are given (their ranges are TrainSettings' limits)."""
    return DEFAULT_STEPS if steps is None and max_minutes is None else steps


def _load_val_sets(
    val: Sequence[ValSet | str | Path], dataset: Any, dataset_config: str | None, val_pairs: int | None
) -> list[ValSet]:
    """ValSet objects as given; other sources loaded (the training dataset again, its test split: same --config)."""
    return [
        v
        if isinstance(v, ValSet)
        else load_val_set(v, dataset_config=dataset_config if str(v) == str(dataset) else None, max_pairs=val_pairs)
        for v in val
    ]


@dataclass
class _Run:
    """One training run in this process: the model, its optimizer and state, and the clocks of the loop.

    The methods are the loop's steps, top to bottom: `start`, then per step `step` (forward, backward,
    update), `report`, `maybe_validate`, `maybe_checkpoint`; then `finish` and `result`.
    """

    run_dir: Path
    cfg: FusionConfig
    accelerator: Any
    model: Any
    opt: torch.optim.Optimizer
    state: TrainerState
    sampler: PatchSampler
    rng: np.random.Generator
    n_params: int
    steps: int | None
    budget_s: float | None
    val_sets: list[ValSet]
    val_fracs: list[float]
    log: Callable[[str], None] | None
    last_ckpt: Path | None
    status: str = "done"  # "done", "complete" (already trained), "nan"
    message: str = ""
    window: list[dict[str, float]] = field(default_factory=list)  # losses since the last history point
    next_val: int = 0  # index into val_fracs of the next validation point
    start_step: int = 0
    t0: float = 0.0  # training-clock origin (moved forward by time spent validating)
    elapsed0: float = 0.0  # training seconds of earlier runs (resume)
    last_save_t: float = 0.0
    last_save_step: int = 0
    run_time: float = 0.0

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def use_labels(self) -> bool:
        return entity_path_enabled(self.cfg)

    def fraction(self, step: int, elapsed: float) -> float:
        """How much of the budget (steps or time, whichever is further) is spent."""
        if self.steps == 0:  # --steps 0: the untrained initialisation, written as a run
            return 1.0
        f = step / self.steps if self.steps else 0.0
        return max(f, elapsed / self.budget_s) if self.budget_s else f

    def agreed(self, flag: bool) -> bool:
        """Any process says yes -> all do (so no process waits forever for the others)."""
        if self.accelerator.num_processes == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.accelerator.device)
        return bool(self.accelerator.reduce(t, reduction="sum").item() > 0)

    def say(self, line: str) -> None:
        if self.log is not None and self.main:
            self.log(line)

    def _append_log(self, event: dict[str, Any]) -> None:
        with open(self.run_dir / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")

    def checkpoint(self) -> Path:
        """Save RUN_DIR/checkpoint, the loss curve and a log event (main process); all processes wait."""
        self.accelerator.wait_for_everyone()
        path = self.run_dir / CHECKPOINT_DIR
        if self.main:
            st = self.state
            path = save_checkpoint(self.run_dir, self.accelerator.unwrap_model(self.model), self.cfg, st, self.opt)
            write_loss_curve(st.history, self.run_dir / CURVE_FILE)
            self._append_log({"event": "checkpoint", "step": st.step, "elapsed_s": round(st.elapsed_s, 2),
                              "time": time.time()})  # fmt: skip
        return path

    def validate(self) -> None:
        """Score the validation sets (main process), keep the best checkpoint, log and draw the curve."""
        self.accelerator.wait_for_everyone()
        if self.main:
            st = self.state
            net = self.accelerator.unwrap_model(self.model)
            res = validate(net, self.val_sets)
            st.val_history.append({"step": st.step, "score": res["score"], "sets": res["sets"]})
            better = not st.best or res["score"] > st.best["score"]
            if better:
                st.best = {"step": st.step, "score": res["score"]}
                save_checkpoint(self.run_dir, net, self.cfg, st, None, folder=BEST_DIR)
            write_val_curve(st.val_history, st.best.get("step"), self.run_dir / VAL_CURVE_FILE)
            self._append_log({"event": "val", "step": st.step, "score": res["score"], "best": better,
                              "sets": res["sets"], "time": time.time()})  # fmt: skip
            for line in format_result(res):
                self.say(f"validation step {st.step}{' (best)' if better else ''}: {line}")
        self.accelerator.wait_for_everyone()

    def start(self, progress: Any) -> Any:
        """Start the clocks and the progress task; status "complete" when the budget was spent before."""
        st = self.state
        self.next_val = sum(f <= self.fraction(st.step, st.elapsed_s) for f in self.val_fracs[:-1])
        self.start_step, self.t0 = st.step, time.monotonic()
        self.elapsed0 = st.elapsed_s
        self.last_save_t, self.last_save_step = self.t0, st.step
        total = self.steps if self.steps else int(self.budget_s or 0)
        done = st.step if self.steps else int(self.elapsed0)
        task = progress.add_task("train", total=total, completed=done) if progress else None
        if self.fraction(st.step, self.elapsed0) >= 1.0 and self.last_ckpt is not None:
            self.status = "complete"
        return task

    def step(self, lr: float) -> float | None:
        """One optimizer step at `lr`; its loss, or None (status "nan") when the loss or gradient is not finite."""
        cfg, dev = self.cfg, self.accelerator.device
        for g in self.opt.param_groups:
            g["lr"] = lr
        ir, vis, target = (t.to(dev) for t in self.sampler.batch(self.rng, cfg.batch_size))
        labels = target if self.use_labels else None
        out = self.model(ir, vis, labels)
        loss, parts = losses.fusion_loss(out.fused, ir, vis, cfg, out.logits, labels)
        bad = self.agreed(not math.isfinite(float(loss.detach())))
        if not bad:
            self.opt.zero_grad(set_to_none=True)
            self.accelerator.backward(loss)
            norm = self.accelerator.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            bad = self.agreed(norm is not None and not math.isfinite(float(norm)))
        if bad:
            self._stop_on_nan(float(loss.detach()))
            return None
        self.opt.step()
        self.state.step += 1
        self.window.append({"loss": float(loss.detach()), **parts})
        if len(self.window) >= cfg.log_steps:
            self._flush_window(lr)
        return float(loss.detach())

    def _stop_on_nan(self, loss: float) -> None:
        kept = (
            f"the last good checkpoint (step {self.last_save_step}) is kept in {self.last_ckpt}"
            if self.last_ckpt
            else ("no checkpoint had been written yet")
        )
        self.status = "nan"
        self.message = f"loss became {loss} at step {self.state.step + 1}; training stopped; {kept}"

    def _flush_window(self, lr: float) -> None:
        """One history point: the mean of the losses since the last one."""
        avg = {k: float(np.mean([w[k] for w in self.window])) for k in self.window[0]}
        self.state.history.append({"step": self.state.step, "lr": lr, **avg})
        self.window = []

    def status_line(self, loss: float) -> str:
        run_s = time.monotonic() - self.t0
        recent = [h["loss"] for h in self.state.history[-5:]] or [loss]
        return _status_line(self.state.step, self.steps, self.budget_s, self.elapsed0 + run_s, run_s,
                            self.state.step - self.start_step, self.cfg.batch_size, float(np.mean(recent)))  # fmt: skip

    def maybe_validate(self) -> None:
        """Validate at the next of the evenly spaced points (the last one is `finish`'s); not training time."""
        if self.val_sets and self.next_val < len(self.val_fracs) - 1:
            now_frac = self.fraction(self.state.step, self.elapsed0 + (time.monotonic() - self.t0))
            if self.agreed(now_frac >= self.val_fracs[self.next_val]):
                t_val = time.monotonic()
                self.validate()
                self.next_val += 1
                self.t0 += time.monotonic() - t_val

    def maybe_checkpoint(self) -> None:
        now, cfg = time.monotonic(), self.cfg
        due_time = now - self.last_save_t >= cfg.checkpoint_minutes * 60
        if self.agreed(due_time or self.state.step - self.last_save_step >= cfg.checkpoint_steps):
            self.last_ckpt = self.checkpoint()
            self.last_save_t, self.last_save_step = time.monotonic(), self.state.step

    def loop(self, progress: Any, status_steps: int) -> None:
        """Step until the budget is spent (agreed by all processes) or the loss is no longer finite."""
        bar_shown = progress is not None and not getattr(progress, "disable", False)
        task = self.start(progress)
        while self.status == "done":
            st = self.state
            st.elapsed_s = self.elapsed0 + (time.monotonic() - self.t0)
            frac = self.fraction(st.step, st.elapsed_s)
            if self.agreed(frac >= 1.0):
                break
            loss = self.step(lr_at(self.cfg, st.step, frac))
            if loss is None:
                break
            if task is not None:
                progress.update(task, completed=st.step if self.steps else int(st.elapsed_s),
                                description=f"train loss {loss:.4f}")  # fmt: skip
            if not bar_shown and status_steps > 0 and st.step % status_steps == 0:
                self.say(self.status_line(loss))
            self.maybe_validate()
            self.maybe_checkpoint()

    def finish(self) -> None:
        """After a finished budget: last history point, last validation, final checkpoint."""
        st = self.state
        if self.status != "done":
            self.run_time = time.monotonic() - self.t0
            return
        if self.window:
            self._flush_window(lr_at(self.cfg, st.step, 1.0))
        self.run_time = time.monotonic() - self.t0
        if self.val_sets and not (st.val_history and st.val_history[-1]["step"] == st.step):
            self.validate()
        if not self.val_sets and (self.run_dir / BEST_DIR).is_dir() and self.main:  # chosen for an earlier budget
            shutil.rmtree(self.run_dir / BEST_DIR)
            st.best = {}
            warnings.warn(f"removed {self.run_dir / BEST_DIR} (this run went on without --val)", stacklevel=3)
        self.last_ckpt = self.checkpoint()

    def result(self) -> TrainResult:
        st, done_steps = self.state, self.state.step - self.start_step
        return TrainResult(
            run_dir=self.run_dir,
            status=self.status,
            step=st.step,
            elapsed_s=st.elapsed_s,
            params=self.n_params,
            labels=list(self.cfg.labels),
            fusion_only=not self.use_labels,
            checkpoint=self.last_ckpt,
            patches_per_s=done_steps * self.cfg.batch_size / self.run_time if done_steps and self.run_time > 0 else 0.0,
            last_loss=st.history[-1] if st.history else {},
            message=self.message,
            is_main=self.main,
            best=dict(st.best),
            last_val=(
                {"score": st.val_history[-1]["score"], "sets": st.val_history[-1]["sets"]}
                if self.val_sets and st.val_history
                else {}
            ),  # fmt: skip
        )


def _setup(
    run_dir: Path, ds: Any, cfg: FusionConfig, ckpt: Path | None, *, steps: int | None, max_minutes: float | None,
    val_sets: list[ValSet], val_points: int, log: Callable[[str], None] | None,
) -> _Run:  # fmt: skip
    """Model (entity table embedded for a new run), AdamW, state restored from `ckpt`, all prepared by accelerate."""
    from accelerate import Accelerator

    store = PairStore(ds, cfg.labels if entity_path_enabled(cfg) else [])
    accelerator = Accelerator()
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
    return _Run(
        run_dir=run_dir,
        cfg=cfg,
        accelerator=accelerator,
        model=model,
        opt=opt,
        state=state,
        n_params=accelerator.unwrap_model(model).num_params(),
        sampler=PatchSampler(store, cfg),
        rng=np.random.default_rng([cfg.seed, state.step, accelerator.process_index]),
        steps=steps,
        budget_s=max_minutes * 60.0 if max_minutes is not None else None,
        val_sets=val_sets,
        val_fracs=[(k + 1) / val_points for k in range(val_points)],
        log=log,
        last_ckpt=ckpt,
    )


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
    check_values(
        TrainSettings,
        max_minutes=max_minutes,
        steps=steps,
        val_points=val_points,
        val_pairs=val_pairs,
        status_steps=status_steps,
    )  # fmt: skip - the CLI's limits (settings.py) for direct callers too
    steps = _default_budget(steps, max_minutes)
    run_dir = ensure_writable_dir(out_dir)
    recover_run(run_dir)  # a save killed half-way: its checkpoint back in place, its temporary removed
    val_sets = _load_val_sets(val, dataset, dataset_config, val_pairs)
    ds = pick_split(open_dataset(dataset, dataset_config), split)
    if len(ds) == 0:
        raise EntityLabelError("the dataset has no pairs", path=str(dataset))
    names = label_space(ds)
    store = PairStore(ds, names)  # checks the ir/vis columns first
    store.check_all()  # a null or broken image, or a bad class index: one line naming the row, before training
    if not names:
        warn_fusion_only("the dataset has no entity label space")
        names = []
    elif not store.any_labels():
        warn_fusion_only("no pair of the dataset carries an entity label")
        names = []
    cfg, ckpt = _resolve_config(run_dir, config, names, resume)
    run = _setup(run_dir, ds, cfg, ckpt, steps=steps, max_minutes=max_minutes, val_sets=val_sets,
                 val_points=val_points, log=log)  # fmt: skip
    run.loop(progress, status_steps)
    run.finish()
    return run.result()
