"""One place that seeds Python, NumPy and torch, and captures / restores their RNG states."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def set_seed(seed: int) -> int:
    """Seed `random`, NumPy and torch's global generator; returns the seed for the record."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


CPU = torch.device("cpu")


def rng_state(generators: dict[str, torch.Generator], device: torch.device = CPU) -> dict[str, Any]:
    """Every RNG state a run depends on: Python, NumPy, torch's global one, named generators and, on
    a GPU, the device's default generator, which draws for what takes no generator (dropout) and
    which `torch.get_rng_state()` does not hold."""
    state = {
        "python": random.getstate(),
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
        "generators": {name: g.get_state() for name, g in generators.items()},
    }
    if device.type != "cpu":
        state["device"] = torch.get_device_module(device).get_rng_state(device)
    return state


def _numpy_state() -> dict[str, Any]:
    # Plain tensors and numbers, so that torch.load(weights_only=True) can read it back.
    _, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "key": torch.from_numpy(key.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator], device: torch.device = CPU) -> None:
    """Restore `rng_state`'s streams; the device's default generator when the state has one (a
    checkpoint written on a GPU, resumed on one) and `device` is a GPU."""
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    for name, g in generators.items():
        g.set_state(state["generators"][name])
    if device.type != "cpu" and "device" in state:
        torch.get_device_module(device).set_rng_state(state["device"], device)
