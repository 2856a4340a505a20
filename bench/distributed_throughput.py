"""Benchmark (not a test): data-parallel throughput against the number of processes P (issue 7).

For each P, P processes (1 torch thread each) join a gloo group on this machine, exactly as
torchrun's workers do (RANK / WORLD_SIZE / MASTER_ADDR in the environment, then
`seqgan.distributed.init_from_env`), and time with the same global batch sizes:
- mle: one MLE epoch (`mle_epoch` through DDP) over --num-train random sequences, batch --batch;
- adversarial: --adv-steps policy-gradient steps (`policy_gradient_step`: batch --batch sharded,
  --rollouts Monte Carlo rollouts each, gradients averaged by DDP).
Throughput is global sequences per second (the slowest rank's wall time, after a barrier);
scaling efficiency = throughput(P) / (P * throughput(1)).

Sizes default to the paper's (T = 20, V = 5000, G an LSTM 32/32, D the paper's CNN, batch 64,
16 rollouts). Each process uses one core: on a 2-core machine P = 2 uses both cores, so any other
load on the machine lowers the P = 2 figure. Ends by printing one JSON line.

    python bench/distributed_throughput.py [--procs 1,2] [--vocab 5000] [--num-train 10000] [--adv-steps 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import time

import torch
import torch.multiprocessing as mp

from seqgan import distributed
from seqgan.algorithms.build import build_discriminator, build_generator
from seqgan.algorithms.common import Streams, mle_epoch
from seqgan.algorithms.seqgan import Players, policy_gradient_step
from seqgan.config import AdversarialConfig, DiscriminatorConfig, GeneratorConfig
from seqgan.runtime import configure


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world: int, port: int, args: argparse.Namespace, results: mp.Queue) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    configure(1)
    dist = distributed.init_from_env() if world > 1 else distributed.SINGLE
    torch.manual_seed(0)  # the same initial models on every rank
    g = build_generator(GeneratorConfig(), args.vocab, start_token=0, eos_token=None, pad_token=0)
    rollout = build_generator(GeneratorConfig(), args.vocab, start_token=0, eos_token=None, pad_token=0).requires_grad_(False)
    rollout.load_state_dict(g.state_dict())
    d = build_discriminator(DiscriminatorConfig(), args.vocab)
    g_model = distributed.replicate(g, dist)
    data = torch.randint(args.vocab, (args.num_train, args.seq_len), generator=torch.Generator().manual_seed(1))
    mle_opt, adv_opt = torch.optim.Adam(g.parameters(), 1e-2), torch.optim.Adam(g.parameters(), 1e-2)
    streams = Streams(sample=torch.Generator().manual_seed(dist.seed(3)), shuffle=torch.Generator().manual_seed(2))
    players = Players(g, rollout, d)
    adversarial_cfg = AdversarialConfig(batch_size=args.batch, rollout_num=args.rollouts)

    def timed(fn) -> float:
        distributed.barrier(dist)
        begin = time.perf_counter()
        fn()
        distributed.barrier(dist)
        return time.perf_counter() - begin

    mle = timed(lambda: mle_epoch(g, mle_opt, data, args.batch, 5.0, streams.shuffle, dist=dist, model=g_model))

    def adversarial() -> None:
        for _ in range(args.adv_steps):
            policy_gradient_step(players, adv_opt, adversarial_cfg, args.seq_len, streams, dist=dist, model=g_model)

    adv = timed(adversarial)
    if dist.is_main():
        batches = args.num_train // args.batch
        results.put({"mle_seq_per_s": batches * args.batch / mle, "adv_seq_per_s": args.adv_steps * args.batch / adv})
    distributed.cleanup()


def measure(world: int, args: argparse.Namespace) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    mp.start_processes(worker, (world, free_port(), args, results), nprocs=world, join=True, start_method="spawn")
    return results.get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", default="1,2", help="comma list of process counts (default 1,2)")
    parser.add_argument("--vocab", type=int, default=5000)
    parser.add_argument("--seq-len", type=int, default=20)
    parser.add_argument("--num-train", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=64, help="global batch (MLE and adversarial)")
    parser.add_argument("--rollouts", type=int, default=16)
    parser.add_argument("--adv-steps", type=int, default=4)
    args = parser.parse_args()
    procs = [int(p) for p in args.procs.split(",")]
    if procs[0] != 1:
        raise SystemExit("--procs must start with 1: efficiency is measured against one process")
    out: dict[str, object] = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), **vars(args)}
    base = None
    for p in procs:
        r = measure(p, args)
        base = base or r
        for key in ("mle", "adv"):
            out[f"{key}_seq_per_s_p{p}"] = round(r[f"{key}_seq_per_s"], 2)
            out[f"{key}_efficiency_p{p}"] = round(r[f"{key}_seq_per_s"] / (p * base[f"{key}_seq_per_s"]), 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
