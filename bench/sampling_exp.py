"""Benchmark: the exponential of sampling, `exp` against `exp2` of the logits times log2 e.

Times, interleaved in one process and as medians of --repeats, on the paper's sizes:
- the exponential alone on 1,024 x 5,000 logits (a rollout step's chunk): `exp_()` against
  `mul_(log2 e).exp2_()`, each after the same copy of the logits (the copy is timed and subtracted);
- `rollout_sequences` of a paper G step (64 sequences of 20 tokens, 16 rollouts each, an LSTM 32/32
  over 5,000 words) with `seqgan.models.sampling`'s exponential as it is (exp2) and swapped for
  `exp_()` (the code before this bench);
- with --g-step, a whole paper G step (rollouts, the paper CNN D's scoring, the PG update) both ways.
Also prints how far apart the two exponentials are (largest relative difference) and one JSON line.

    python bench/sampling_exp.py [--repeats 5] [--threads 1] [--g-step]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

import seqgan.models.sampling as sampling
from seqgan.algorithms.base import adam
from seqgan.algorithms.common import Streams
from seqgan.algorithms.seqgan import Players, policy_gradient_step
from seqgan.config import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, AdversarialConfig
from seqgan.models.discriminator import CNNDiscriminator
from seqgan.models.generator import Generator, frozen_copy
from seqgan.rl.rollout import rollout_sequences
from seqgan.runtime import configure

ROWS, V, B, T, N, H, D_EMB = 1024, 5000, 64, 20, 16, 32, 64


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
    parser.add_argument("--g-step", action="store_true", help="also time a whole paper G step both ways")
    args = parser.parse_args()
    configure(threads=args.threads)
    torch.manual_seed(0)
    logits = torch.randn(ROWS, V) * 3
    work = torch.empty_like(logits)
    policy = Generator(V, H, H).eval()
    sequences = torch.randint(V, (B, T))
    exp2_probs = sampling._unnormalised_probs

    players = Players(
        policy, frozen_copy(policy), CNNDiscriminator(V, D_EMB, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, dropout=0.25)
    )
    g_opt, adversarial = adam(list(policy.parameters()), 0.01), AdversarialConfig(batch_size=B, rollout_num=N)
    streams = Streams(sample=torch.Generator().manual_seed(0), shuffle=torch.Generator().manual_seed(0))

    def with_exponential(probs: Callable[[torch.Tensor], torch.Tensor], fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            sampling._unnormalised_probs = probs
            try:
                return fn()
            finally:
                sampling._unnormalised_probs = exp2_probs

        return run

    def rollouts() -> object:
        return rollout_sequences(policy, sequences, N, torch.Generator().manual_seed(1))

    def g_step() -> object:
        return policy_gradient_step(players, g_opt, adversarial, T, streams)

    keys = ["copy", "exp", "exp2", "rollout_exp", "rollout_exp2"] + (["g_step_exp", "g_step_exp2"] if args.g_step else [])
    times: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(args.repeats):
        times["copy"].append(seconds(lambda: work.copy_(logits), 20))
        times["exp"].append(seconds(lambda: work.copy_(logits).exp_(), 20))
        times["exp2"].append(seconds(lambda: work.copy_(logits).mul_(sampling.LOG2_E).exp2_(), 20))
        times["rollout_exp"].append(seconds(with_exponential(exp_probs, rollouts), 1))
        times["rollout_exp2"].append(seconds(with_exponential(exp2_probs, rollouts), 1))
        if args.g_step:
            times["g_step_exp"].append(seconds(with_exponential(exp_probs, g_step), 1))
            times["g_step_exp2"].append(seconds(with_exponential(exp2_probs, g_step), 1))
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
    if args.g_step:
        result["g_step_seconds_exp"] = round(med["g_step_exp"], 3)
        result["g_step_seconds_exp2"] = round(med["g_step_exp2"], 3)
        result["g_step_speedup"] = round(med["g_step_exp"] / med["g_step_exp2"], 3)
    for key, value in result.items():
        print(f"{key:28s} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
