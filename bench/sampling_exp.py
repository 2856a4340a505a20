"""Benchmark: sampling's exponential, `exp` against `exp2` of base-2 logits, at the paper's sizes.

Times, interleaved in one process and as medians of --repeats (1 thread by default):
- the exponential alone on 1,024 x 5,000 logits (a rollout step's chunk): `exp_()` against
  `mul_(log2 e).exp2_()`, each after the same copy of the logits (the copy is timed and subtracted);
- `rollout_sequences` of a paper G step (64 sequences of 20 tokens, 16 rollouts each, an LSTM 32/32
  over 5,000 words), `Generator.sample` of 10,000 sequences of 20 tokens (D's negatives, an
  evaluation's samples), and with --g-step a whole paper G step (rollouts, the paper CNN D's
  scoring, the PG update), four ways:
  `exp`:    each step's logits by `F.linear`, then `exp_()` (the code before commit 9bb234f);
  `exp2`:   the same logits times log2 e, then `exp2_()` (commit 9bb234f);
  `folded_max`: `Generator.sampling_step`, whose one product gives base-2 logits (log2 e and the
            bias folded into the output layer), then the row max and `exp2_()` (the code before the
            draws skipped the row max);
  `folded`: the same, with the product at hand (`Base2Logits`), so the draw exponentiates without
            the row max and only checks the rows' totals (the code as it is).
  The first three are the code as it is with `Generator.sampling_step` and `sampling.exp2_probs`
  swapped for the older ways (the rollouts' prefix logits are scaled by log2 e in all of them: one
  pass over 19 x 64 x 5,000 logits per G step).
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
WAYS = ("exp", "exp2", "folded_max", "folded")


def seconds(fn: Callable[[], object], calls: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def exp_probs(logits: torch.Tensor) -> torch.Tensor:
    """The exponential before commit 9bb234f: `exp_()` of natural logits after the optional row max."""
    row_max = logits.amax(dim=1, keepdim=True)
    if bool((row_max.abs() < sampling.SAFE_LOGIT).all()):
        return logits.exp_()
    return logits.sub_(row_max).exp_()


def linear_step(scale: float | None) -> Callable[..., Callable]:
    """A `Generator.sampling_step` by `step` (F.linear), its logits times `scale` (None: as they are)."""

    def sampling_step(self: Generator, temperature: float = 1.0) -> Callable:
        def step(token: torch.Tensor, state: tuple[torch.Tensor, ...] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
            logits, new_state = self.step(token, state)
            return (logits if scale is None else logits.mul_(scale / temperature)), new_state

        return step

    return sampling_step


def logits_alone(folded_step: Callable[..., Callable]) -> Callable[..., Callable]:
    """`Generator.sampling_step` whose logits come without their product: the draw takes the row max."""

    def sampling_step(self: Generator, temperature: float = 1.0) -> Callable:
        step = folded_step(self, temperature)

        def plain(token: torch.Tensor, state: tuple[torch.Tensor, ...] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
            logits, new_state = step(token, state)
            return logits.values, new_state

        return plain

    return sampling_step


def way(name: str, fn: Callable[[], object]) -> Callable[[], object]:
    """fn run with sampling's step and exponential of the way `name`."""
    folded_step, exp2 = Generator.sampling_step, sampling.exp2_probs
    step, probs = {
        "exp": (linear_step(None), exp_probs),
        "exp2": (linear_step(sampling.LOG2_E), exp2),
        "folded_max": (logits_alone(folded_step), exp2),
        "folded": (folded_step, exp2),
    }[name]

    def run() -> object:
        Generator.sampling_step, sampling.exp2_probs = step, probs
        try:
            return fn()
        finally:
            Generator.sampling_step, sampling.exp2_probs = folded_step, exp2

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--g-step", action="store_true", help="also time a whole paper G step each way")
    args = parser.parse_args()
    configure(threads=args.threads)
    torch.manual_seed(0)
    logits = torch.randn(ROWS, V) * 3
    work = torch.empty_like(logits)
    policy = Generator(V, H, H).eval()
    sequences = torch.randint(V, (B, T))
    players = Players(
        policy, frozen_copy(policy), CNNDiscriminator(V, D_EMB, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, dropout=0.25)
    )
    g_opt, adversarial = adam(list(policy.parameters()), 0.01), AdversarialConfig(batch_size=B, rollout_num=N)
    streams = Streams(sample=torch.Generator().manual_seed(0), shuffle=torch.Generator().manual_seed(0))

    def rollouts() -> object:
        return rollout_sequences(policy, sequences, N, torch.Generator().manual_seed(1))

    def g_step() -> object:
        return policy_gradient_step(players, g_opt, adversarial, T, streams)

    def samples() -> object:
        return policy.sample(10_000, T, torch.Generator().manual_seed(3))

    parts = {"rollout": rollouts, "sample": samples, **({"g_step": g_step} if args.g_step else {})}
    times: dict[str, list[float]] = {k: [] for k in ("copy", "exp", "exp2")}
    for _ in range(args.repeats):
        times["copy"].append(seconds(lambda: work.copy_(logits), 20))
        times["exp"].append(seconds(lambda: work.copy_(logits).exp_(), 20))
        times["exp2"].append(seconds(lambda: work.copy_(logits).mul_(sampling.LOG2_E).exp2_(), 20))
        for part, fn in parts.items():
            for name in WAYS:
                times.setdefault(f"{part}_{name}", []).append(seconds(way(name, fn), 1))
    med = {k: statistics.median(v) for k, v in times.items()}
    exact = logits.exp()
    result: dict[str, float | int] = {
        "threads": args.threads,
        "repeats": args.repeats,
        "exp_ms_per_1024_rows": round((med["exp"] - med["copy"]) * 1e3, 3),
        "exp2_ms_per_1024_rows": round((med["exp2"] - med["copy"]) * 1e3, 3),
        "max_relative_difference": ((exact - (logits * sampling.LOG2_E).exp2()).abs() / exact).max().item(),
    }
    for part in parts:
        for name in WAYS:
            result[f"{part}_seconds_{name}"] = round(med[f"{part}_{name}"], 3)
        result[f"{part}_speedup_folded_over_exp"] = round(med[f"{part}_exp"] / med[f"{part}_folded"], 3)
        result[f"{part}_speedup_folded_over_folded_max"] = round(med[f"{part}_folded_max"] / med[f"{part}_folded"], 3)
    for key, value in result.items():
        print(f"{key:34s} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
