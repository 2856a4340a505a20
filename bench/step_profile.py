"""Benchmark: where one D training step and one MLE step spend their time, kernel by kernel, at the
paper's sizes (batch 64, T = 20, V = 5000, the paper's CNN D with its fused convolution on CUDA).

The paper's protocol is about a million D steps, so on a GPU the time of a graphed D step decides
whether it fits in minutes. This prints, for each kind of step, the time per step replayed as a CUDA
graph (`seqgan.cuda_graphs`, on CUDA) and eagerly, the operators (and on CUDA the kernels) per
eager step, and the operators that take the most time, from `torch.profiler` over --steps eager
steps: what to fuse next. On the CPU the same tables, without graphs. Prints one JSON line last.

    python bench/step_profile.py [--device cpu|cuda] [--steps 20] [--top 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from adversarial_step import D_EMB, E, H, T, V
from seqgan.algorithms.base import adam
from seqgan.algorithms.common import teacher_forced_loss
from seqgan.config import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS
from seqgan.cuda_graphs import StepGraphs, eager_step, step_graphs_apply
from seqgan.distributed import SINGLE, replicate
from seqgan.models.discriminator import CNNDiscriminator
from seqgan.models.generator import Generator
from seqgan.runtime import configure

B = 64


def steps(device: torch.device) -> dict[str, tuple[torch.optim.Optimizer, Callable, tuple, float | None, Callable | None]]:
    """Each kind of step: its optimizer, loss function, inputs, gradient clip and after-step hook."""
    torch.manual_seed(0)
    d = CNNDiscriminator(V, D_EMB, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, dropout=0.25).to(device).train()
    g = Generator(V, E, H).to(device).train()
    wrapped = replicate(g, SINGLE)  # what `mle_epoch` calls the loss through
    tokens = torch.randint(0, V, (B, T), device=device)

    def d_loss(x: torch.Tensor, is_real: torch.Tensor) -> torch.Tensor:
        return d.loss(x, None, is_real, label_smoothing=0.0, l2_reg=0.2)

    def mle_loss(x: torch.Tensor) -> torch.Tensor:
        return teacher_forced_loss(wrapped, x, None, None, None)

    is_real = torch.arange(B, device=device) < B // 2
    return {
        "d_step": (adam(list(d.parameters()), 1e-4), d_loss, (tokens, is_real), None, d.weights_changed),
        "mle_step": (adam(list(g.parameters()), 1e-2), mle_loss, (tokens,), 5.0, None),
    }


def per_step_ms(run: Callable[[], object], device: torch.device, n: int) -> float:
    for _ in range(3):
        run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / n * 1e3


def profile_step(run: Callable[[], object], device: torch.device, n: int, top: int) -> tuple[dict, str]:
    """Operators (and kernels) per step, and the table of the `top` most expensive ones."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(n):
            run()
        if device.type == "cuda":
            torch.cuda.synchronize()
    events = prof.key_averages()
    top_level = [  # an operator called by another one runs inside it
        e for e in prof.events() if e.name.startswith("aten::") and not (e.cpu_parent and e.cpu_parent.name.startswith("aten::"))
    ]
    figures = {"aten_ops_per_step": round(len(top_level) / n, 1)}
    if device.type == "cuda":
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        figures["kernels_per_step"] = round(len(kernels) / n, 1)
        figures["kernel_ms_per_step"] = round(sum(e.device_time for e in kernels) / n / 1e3, 3)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return figures, events.table(sort_by=sort, row_limit=top)


def measure(name, opt, loss_fn, inputs, clip, after, *, device: torch.device, n: int, top: int) -> tuple[dict, str]:
    """One kind of step: its time eager and, where graphs apply, replayed; its profile (eager)."""
    figures = {"eager_ms": round(per_step_ms(lambda: eager_step(loss_fn, inputs, opt, clip), device, n), 3)}
    if step_graphs_apply(opt, False, "fp32", True):
        graphs = StepGraphs(opt, after)
        figures["graphed_ms"] = round(per_step_ms(lambda: graphs.step(name, loss_fn, inputs, clip), device, n), 3)
        figures["graphs_captured"] = len(graphs.graphs)
    counts, table = profile_step(lambda: eager_step(loss_fn, inputs, opt, clip), device, n, top)
    return figures | counts, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=20, help="steps timed and profiled per kind")
    parser.add_argument("--top", type=int, default=15, help="rows of each profile table")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    configure(args.threads)
    device = torch.device(args.device)
    out: dict[str, object] = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "threads": args.threads}
    for name, parts in steps(device).items():
        figures, table = measure(name, *parts, device=device, n=args.steps, top=args.top)
        print(f"== {name} (eager, {args.steps} steps)\n{table}")
        out[name] = figures
    print(json.dumps(out))


if __name__ == "__main__":
    main()
