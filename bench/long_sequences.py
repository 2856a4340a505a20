"""Benchmark: the cost of one adversarial epoch at --short vs --long tokens, for each reward.

Issue 20 (item 2): Monte Carlo rollouts from every prefix cost about N x T^2 / 2 sampled tokens
plus N x T scored sequences per generated sequence, 400x more at 400 tokens than at 20; the
target is at most 40x for one adversarial epoch. Compared, on the same built-in random oracle with
the same number of sequences (--num-train) and the same run settings at both lengths:
- rollout: the paper's rewards, rollouts from every prefix (adversarial.rollout_stride=1), CNN D;
- stride: rollouts from every k-th prefix only, k = T x --stride-fraction (T/10: 2 at 20 tokens,
  40 at 400), so the number of rolled-out prefixes stays the same, CNN D;
- prefix_d: no rollouts; Q(t) = D(y_1..t) from a one-way GRU D trained on every prefix;
- prefix_d_cnn: the same with the CNN D made causal (discriminator.causal=true).
One epoch is g_steps = 1 policy-gradient step then d_steps = 1 D round (fresh negatives, one D
epoch), as `SeqGAN.adversarial_epoch` runs it after a run's pre-training (pre-training itself is
skipped: the weights' values do not change the cost). Each figure is the median of --repeats
epochs, after one untimed epoch. Prints one JSON line: wall and CPU seconds per epoch at each
length and their ratios long / short per reward, the torch thread count and the load average
(on a shared machine the CPU-time ratio is the steadier figure).

    python bench/long_sequences.py [--short 20] [--long 400] [--threads 1] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from seqgan.config import load_config
from seqgan.training.run import Trainer

CNN_D = ["discriminator.filter_sizes=[1,2,3,5]", "discriminator.num_filters=[16,16,16,16]"]
GRU_D = ["discriminator.kind=rnn", "discriminator.bidirectional=false", "discriminator.rnn_hidden=32"]


def overrides(reward: str, seq_len: int, args: argparse.Namespace) -> list[str]:
    """The run settings: the same at every length but data.seq_len (and the stride, T / 10)."""
    run = [
        f"threads={args.threads}",
        "data.oracle=random",
        "data.vocab_size=64",
        "data.embed_dim=16",
        "data.hidden_dim=32",
        f"data.seq_len={seq_len}",
        f"data.num_train={args.num_train}",
        "data.num_test=64",
        "generator.embed_dim=16",
        "generator.hidden_dim=32",
        "discriminator.embed_dim=16",
        "discriminator.batch_size=64",
        "pretrain.epochs=0",
        "d_pretrain.steps=0",
        "adversarial.epochs=1",
        f"adversarial.batch_size={args.batch}",
        "adversarial.d_steps=1",
        "adversarial.d_epochs=1",
        f"adversarial.num_negatives={args.num_train}",
    ]
    if reward == "prefix_d":
        return [*run, *GRU_D, "adversarial.reward=prefix_d"]
    if reward == "prefix_d_cnn":
        return [*run, *CNN_D, "discriminator.causal=true", "adversarial.reward=prefix_d"]
    stride = max(1, round(seq_len * args.stride_fraction)) if reward == "stride" else 1
    return [*run, *CNN_D, f"adversarial.rollout_num={args.rollouts}", f"adversarial.rollout_stride={stride}"]


def epoch_seconds(reward: str, seq_len: int, args: argparse.Namespace) -> tuple[float, float]:
    """Median (wall, CPU) seconds of one adversarial epoch (after an untimed one) for this reward
    and length. CPU time: this process's, which on a machine shared with other work is the steadier
    measure of the work done (wall time also counts the waits for a core)."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(load_config(None, overrides(reward, seq_len, args)), Path(tmp), quiet=True)
        algorithm = trainer.algorithm
        algorithm.begin_phase("adversarial")
        wall, cpu = [], []
        for _ in range(args.repeats + 1):
            begin, begin_cpu = time.perf_counter(), time.process_time()
            algorithm.adversarial_epoch()
            wall.append(time.perf_counter() - begin)
            cpu.append(time.process_time() - begin_cpu)
        return statistics.median(wall[1:]), statistics.median(cpu[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=20)
    parser.add_argument("--long", type=int, default=400)
    parser.add_argument("--num-train", type=int, default=256, help="real sequences, and D's negatives per round")
    parser.add_argument("--batch", type=int, default=32, help="sequences per policy-gradient step")
    parser.add_argument("--rollouts", type=int, default=8, help="N, Monte Carlo continuations per prefix")
    parser.add_argument("--stride-fraction", type=float, default=0.1, help="stride k = T x this (at least 1)")
    parser.add_argument("--rewards", nargs="+", default=["rollout", "stride", "prefix_d", "prefix_d_cnn"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    result: dict = {"short": args.short, "long": args.long, "threads": args.threads, "num_train": args.num_train}
    result |= {"batch": args.batch, "rollouts": args.rollouts, "stride_fraction": args.stride_fraction}
    for reward in args.rewards:
        (short, short_cpu), (long, long_cpu) = epoch_seconds(reward, args.short, args), epoch_seconds(reward, args.long, args)
        result[reward] = {
            "short_seconds": round(short, 3),
            "long_seconds": round(long, 3),
            "ratio": round(long / short, 1),
            "short_cpu_seconds": round(short_cpu, 3),
            "long_cpu_seconds": round(long_cpu, 3),
            "cpu_ratio": round(long_cpu / short_cpu, 1),
        }
    result["torch_threads"] = torch.get_num_threads()
    result["load_average_1min"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
