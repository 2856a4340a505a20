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


def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Every RNG state a run depends on: Python, NumPy, torch's global one and named generators."""
    return {
        "python": random.getstate(),
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
        "generators": {name: g.get_state() for name, g in generators.items()},
    }


def _numpy_state() -> dict[str, Any]:
    # Plain tensors and numbers, so that torch.load(weights_only=True) can read it back.
    _, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "key": torch.from_numpy(key.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    for name, g in generators.items():
        g.set_state(state["generators"][name])
