"""Benchmark: one MLE epoch at the paper's sizes (10,000 sequences of 20 tokens, V = 5000, G an LSTM
32/32, batch 64) with seqgan's fused output layer, against the ports-style reference of
bench/adversarial_step.py (`nn.LSTM` + cross-entropy), interleaved in one process so that both see
the same machine load; medians of --repeats. With --other-head FILE, also with the
head of another fused_head.py (e.g. an older commit's, from `git show`) swapped into the
generator's MLE loss: its `weighted_token_nll`, or, for a head from before it, its
`linear_token_nll` weighted by the rows' weights. Also prints the floor that the output layer's three
matrix products set on any fp32 MLE epoch (both seqgan and the reference compute them): their time
over an epoch at these shapes in 64-row chunks (`output_layer_matmul_seconds`), this core's fp32
matmul rate on 1024^3 (`peak_matmul_gflops`) and theirs, and the reference's epoch over that floor
(`speedup_bound`, the most any fp32 implementation of these products could reach). Prints one JSON line.

    python bench/mle_head.py [--repeats 3] [--threads 1]
    git show 552da58:src/seqgan/models/fused_head.py > /tmp/old_head.py
    python bench/mle_head.py --other-head /tmp/old_head.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable

import torch

import seqgan.models.generator as generator_module
from adversarial_step import NUM_REAL, E, H, PortGenerator, T, V, naive_mle_epoch
from seqgan.algorithms.base import adam
from seqgan.algorithms.common import mle_epoch
from seqgan.runtime import configure


def weighted_by(linear_token_nll: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """An older head's per-token NLL as `weighted_token_nll` (before it, MLE weighted the rows itself)."""

    def weighted(h, weight, bias, target, row_weight):
        return (linear_token_nll(h, weight, bias, target) * row_weight).sum()

    return weighted


def matmul_floor(repeats: int) -> dict[str, float]:
    """The output layer's products of an MLE epoch (logits h+ W+^T, P W, (g h+)^T P over 64-row
    chunks of 64 x 20 rows, V = 5000, H = 32) and a 1024^3 matmul, timed alone (best of repeats)."""
    rows, chunks = 64, T * (NUM_REAL // 64)  # a batch of 64 x T rows is T chunks of 64
    h1, w1t, p, w = torch.randn(rows, H + 1), torch.randn(H + 1, V), torch.rand(rows, V), torch.randn(V, H)
    z, pw, dw = torch.empty(rows, V), torch.empty(rows, H), torch.zeros(H + 1, V)
    a, b, c = torch.randn(1024, 1024), torch.randn(1024, 1024), torch.empty(1024, 1024)

    def best(fn: Callable[[], object], n: int) -> float:
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            times.append((time.perf_counter() - start) / n)
        return min(times)

    products = best(lambda: (torch.mm(h1, w1t, out=z), torch.mm(p, w, out=pw), dw.addmm_(h1.T, p)), 200)
    flops = 2 * rows * V * (2 * (H + 1) + H)
    return {
        "output_layer_matmul_seconds": round(products * chunks, 3),
        "output_layer_matmul_gflops": round(flops / products / 1e9, 1),
        "peak_matmul_gflops": round(2 * 1024**3 / best(lambda: torch.mm(a, b, out=c), 5) / 1e9, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--other-head", help="a fused_head.py whose linear_token_nll to time as well")
    args = parser.parse_args()
    configure(args.threads)
    heads = {"seqgan": generator_module.weighted_token_nll}
    if args.other_head:
        spec = importlib.util.spec_from_file_location("other_head", args.other_head)
        other = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = other  # a module's dataclasses look themselves up there
        spec.loader.exec_module(other)
        heads["other_head"] = getattr(other, "weighted_token_nll", None) or weighted_by(other.linear_token_nll)
    real = torch.randint(0, V, (NUM_REAL, T), generator=torch.Generator().manual_seed(0))
    g = generator_module.Generator(V, E, H)
    opt, shuffle = adam(list(g.parameters()), 0.01), torch.Generator().manual_seed(0)
    port = PortGenerator()
    port_opt = torch.optim.Adam(port.parameters(), 0.01)
    seconds: dict[str, list[float]] = {name: [] for name in [*heads, "reference"]}
    for _ in range(args.repeats):
        for name, head in heads.items():
            generator_module.weighted_token_nll = head  # what Generator.nll_loss, MLE's loss, calls
            start = time.perf_counter()
            mle_epoch(g, opt, real, 64, 5.0, shuffle)
            seconds[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        naive_mle_epoch(port, port_opt, real)
        seconds["reference"].append(time.perf_counter() - start)
    medians = {f"{name}_mle_epoch_seconds": round(statistics.median(v), 3) for name, v in seconds.items()}
    ratios = {
        f"{name}_speedup": round(statistics.median(seconds["reference"]) / statistics.median(v), 3)
        for name, v in seconds.items()
        if name != "reference"
    }
    floor = matmul_floor(args.repeats)
    floor["speedup_bound"] = round(statistics.median(seconds["reference"]) / floor["output_layer_matmul_seconds"], 2)
    print(json.dumps({"threads": args.threads, "repeats": args.repeats, **medians, **ratios, **floor}))


if __name__ == "__main__":
    main()
