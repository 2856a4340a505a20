"""Shared test fixtures: one torch thread (2-core machines), paths to the shared data, and the GPU
played by the CPU (tests/virtual_gpu.py) registered before any test runs: PyTorch's autograd engine
sizes its queues per device at the process's first backward pass, so a device registered after it
cannot run backward passes. Not where a real GPU is visible (the played one is for machines without)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

from seqgan.algorithms import seqgan as seqgan_module

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAPER_ORACLE = SHARED / "data" / "seqgan_oracle" / "target_params.npz"

torch.set_num_threads(1)
if not torch.cuda.is_available():
    with contextlib.suppress(ImportError):  # a torch that cannot define a device from Python: those tests skip
        import virtual_gpu  # noqa: F401


@pytest.fixture
def crash_on_third_pg_step(monkeypatch):
    """A context inside which a run's third policy-gradient step raises KeyboardInterrupt: on the
    smoke config the checkpoint after adversarial epoch 2 exists and epoch 3 dies."""
    real_step = seqgan_module.policy_gradient_step
    calls = {"n": 0}

    def crash_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    @contextlib.contextmanager
    def crashing():
        monkeypatch.setattr(seqgan_module, "policy_gradient_step", crash_on_third)
        try:
            with pytest.raises(KeyboardInterrupt):
                yield
        finally:
            monkeypatch.setattr(seqgan_module, "policy_gradient_step", real_step)

    return crashing


@pytest.fixture
def crash_on_third_call(monkeypatch):
    """crash_on_third_call(module, name): a context inside which the third call of module.name
    raises KeyboardInterrupt (a run dying mid-phase, e.g. in its third adversarial G step)."""

    @contextlib.contextmanager
    def crashing(module, name: str):
        real, calls = getattr(module, name), {"n": 0}

        def crash_on_third(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, crash_on_third)
        try:
            with pytest.raises(KeyboardInterrupt):
                yield
        finally:
            monkeypatch.setattr(module, name, real)

    return crashing


@pytest.fixture
def paper_oracle_path() -> Path:
    if not PAPER_ORACLE.is_file():
        pytest.skip(f"{PAPER_ORACLE} not present (../shared is absent)")
    return PAPER_ORACLE
