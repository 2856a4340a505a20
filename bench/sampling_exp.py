"""Benchmark: the exponential of sampling, `exp` against `exp2` of the logits times log2 e.

Times, interleaved in one process and as medians of --repeats, on the paper's sizes:
- the exponential alone on 1,024 x 5,000 logits (a rollout step's chunk): `exp_()` against
  `mul_(log2 e).exp2_()`, each after the same copy of the logits (the copy is timed and subtracted);
- `rollout_sequences` of a paper G step (64 sequences of 20 tokens, 16 rollouts each, an LSTM 32/32
  over 5,000 words) with `seqgan.models.sampling`'s exponential as it is (exp2) and swapped for
  `exp_()` (the code before this bench).
Also prints how far apart the two exponentials are (largest relative difference) and one JSON line.

    python bench/sampling_exp.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

import seqgan.models.sampling as sampling
from seqgan.models.generator import Generator
from seqgan.rl.rollout import rollout_sequences
from seqgan.runtime import configure

ROWS, V, B, T, N, H = 1024, 5000, 64, 20, 16, 32


def seconds(fn: Callable[[], object], calls: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def exp_probs(logits: torch.Tensor) -> torch.Tensor:
    """The exponential as it was: `exp_()` after the optional row max (see sampling._unnormalised_probs)."""
    row_max = logits.amax(dim=1, keepdim=True)
    if bool((row_max.abs() < sampling.SAFE_LOGIT).all()):
        return logits.exp_()
    return logits.sub_(row_max).exp_()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    configure(threads=args.threads)
    torch.manual_seed(0)
    logits = torch.randn(ROWS, V) * 3
    work = torch.empty_like(logits)
    policy = Generator(V, H, H).eval()
    sequences = torch.randint(V, (B, T))
    exp2_probs = sampling._unnormalised_probs

    def rollouts(probs: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], object]:
        def run() -> object:
            sampling._unnormalised_probs = probs
            try:
                return rollout_sequences(policy, sequences, N, torch.Generator().manual_seed(1))
            finally:
                sampling._unnormalised_probs = exp2_probs

        return run

    times: dict[str, list[float]] = {k: [] for k in ("copy", "exp", "exp2", "rollout_exp", "rollout_exp2")}
    for _ in range(args.repeats):
        times["copy"].append(seconds(lambda: work.copy_(logits), 20))
        times["exp"].append(seconds(lambda: work.copy_(logits).exp_(), 20))
        times["exp2"].append(seconds(lambda: work.copy_(logits).mul_(sampling.LOG2_E).exp2_(), 20))
        times["rollout_exp"].append(seconds(rollouts(exp_probs), 1))
        times["rollout_exp2"].append(seconds(rollouts(exp2_probs), 1))
    med = {k: statistics.median(v) for k, v in times.items()}
    exact = logits.exp()
    relative = ((exact - (logits * sampling.LOG2_E).exp2()).abs() / exact).max().item()
    result = {
        "threads": args.threads,
        "repeats": args.repeats,
        "exp_ms_per_1024_rows": round((med["exp"] - med["copy"]) * 1e3, 3),
        "exp2_ms_per_1024_rows": round((med["exp2"] - med["copy"]) * 1e3, 3),
        "rollout_seconds_exp": round(med["rollout_exp"], 3),
        "rollout_seconds_exp2": round(med["rollout_exp2"], 3),
        "rollout_speedup": round(med["rollout_exp"] / med["rollout_exp2"], 3),
        "max_relative_difference": relative,
    }
    for key, value in result.items():
        print(f"{key:28s} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
