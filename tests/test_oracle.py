"""The oracle: the paper's weights reproduce its entropy rate; the random oracle is seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqgan.metrics.nll import mean_token_nll
from seqgan.models.oracle import OracleError, build_oracle, load_oracle_params, oracle_from_params, random_oracle_params


def manual_oracle_step(p, x_tok, h, c):
    """The gate equations of ../shared/README.md, written out in NumPy."""

    def sig(v):
        return 1 / (1 + np.exp(-v))

    x = p["embedding"][x_tok]
    i = sig(x @ p["W_i"] + h @ p["U_i"] + p["b_i"])
    f = sig(x @ p["W_f"] + h @ p["U_f"] + p["b_f"])
    o = sig(x @ p["W_o"] + h @ p["U_o"] + p["b_o"])
    c = f * c + i * np.tanh(x @ p["W_c"] + h @ p["U_c"] + p["b_c"])
    h = o * np.tanh(c)
    return h @ p["W_out"] + p["b_out"], h, c


def test_oracle_module_follows_the_gate_equations():
    params = random_oracle_params(30, 6, 5, seed=3)
    oracle = oracle_from_params(params)
    y = torch.tensor([[4, 17, 0, 29, 3]])
    logits = oracle(y)[0].double().numpy()
    h = c = np.zeros(5)
    prev = 0
    for t in range(5):
        expect, h, c = manual_oracle_step({k: v.astype(np.float64) for k, v in params.items()}, prev, h, c)
        np.testing.assert_allclose(logits[t], expect, rtol=1e-4, atol=1e-4)
        prev = int(y[0, t])


def test_random_oracle_is_seeded():
    a = build_oracle("random", "", 50, 8, 8, seed=1)
    b = build_oracle("random", "", 50, 8, 8, seed=1)
    c = build_oracle("random", "", 50, 8, 8, seed=2)
    assert torch.equal(a.head.weight, b.head.weight)
    assert not torch.equal(a.head.weight, c.head.weight)


def test_paper_oracle_scores_its_entropy_rate(paper_oracle_path):
    oracle = build_oracle("paper", paper_oracle_path, 5000, 32, 32, 0)
    samples = oracle.sample(10_000, 20, torch.Generator().manual_seed(0))
    nll = mean_token_nll(oracle, samples)
    assert abs(nll - 5.75) < 0.05, nll


def test_missing_oracle_file_says_what_to_do(tmp_path):
    with pytest.raises(OracleError, match="data.oracle=random"):
        load_oracle_params(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, embedding=np.zeros((3, 2)))
    with pytest.raises(OracleError, match="missing arrays"):
        load_oracle_params(bad)
