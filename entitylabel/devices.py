"""A torch device named by the user (`--device`), checked before anything is loaded onto it.

`torch.device("nonsense")` raises a RuntimeError, and a CUDA device that does not exist fails only when the
first tensor moves there (`pin_memory`, `invalid device ordinal`), blamed on whatever was being loaded. So a
device is parsed and looked up here first, and a mistake is one line about the device.
"""

from __future__ import annotations

import torch

from .errors import EntityLabelError

KNOWN = "cpu, cuda, cuda:N or mps"


def check_device(device: str | torch.device, option: str = "--device") -> torch.device:
    """The torch device `device` names, if this machine has it; else one line naming `option` and the device."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise EntityLabelError(f"{option} {device}: not a device (use {KNOWN})") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise EntityLabelError(f"{option} {device}: CUDA is not available on this machine", hint="use --device cpu")
        if dev.index is not None and dev.index >= count:
            have = ", ".join(f"cuda:{i}" for i in range(count))
            raise EntityLabelError(f"{option} {device}: this machine has {count} CUDA device(s) ({have})")
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise EntityLabelError(f"{option} {device}: MPS is not available on this machine", hint="use --device cpu")
        return dev
    raise EntityLabelError(f"{option} {device}: device type {dev.type!r} is not supported (use {KNOWN})")
