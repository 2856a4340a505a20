"""Shared test fixtures: one torch thread (2-core machines), paths to the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAPER_ORACLE = SHARED / "data" / "seqgan_oracle" / "target_params.npz"

torch.set_num_threads(1)


@pytest.fixture
def paper_oracle_path() -> Path:
    if not PAPER_ORACLE.is_file():
        pytest.skip(f"{PAPER_ORACLE} not present (../shared is absent)")
    return PAPER_ORACLE
