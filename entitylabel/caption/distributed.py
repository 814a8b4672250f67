"""Which shards this process captions when several run at once (accelerate launch, torchrun).

Each process loads one full model copy and takes the shards whose index i satisfies i % world == rank:
disjoint, together complete, and stable across restarts. Rank and world come from accelerate's
`PartialState`. Without CUDA it must be built with `cpu=True`, else every CPU process believes it is
rank 0 of 1 and all of them do all the work.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

import torch

T = TypeVar("T")


@functools.lru_cache(maxsize=1)
def process_state() -> Any:
    """accelerate's PartialState for this process (gloo on CPU, NCCL on GPUs)."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def rank_world() -> tuple[int, int]:
    state = process_state()
    return int(state.process_index), int(state.num_processes)


def my_share(items: Sequence[T], rank: int, world: int) -> list[T]:
    """Round-robin share of `items` for `rank` of `world` processes."""
    return [x for i, x in enumerate(items) if i % world == rank]


def wait_for_everyone() -> None:
    """Barrier across processes; a no-op when running alone."""
    state = process_state()
    if state.num_processes > 1:
        state.wait_for_everyone()
