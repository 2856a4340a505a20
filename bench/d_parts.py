"""Benchmark: the parts of the paper's CNN D that `seqgan.models.window_max` and
`CNNDiscriminator.continuation_logits` replace, each against the plain PyTorch way, interleaved
in one process (medians of --repeats), at the paper's sizes on one CPU thread:

- paper_widths_*: the 12 widths' convolution + max over time, forward and backward, batch 64 x 20
  tokens x 64 channels (`F.conv1d(...).amax(-1)` against `window_max`);
- relgan_widths_*: RelGAN's D, 4 widths x 300 filters over 64 x 64 rows of one channel;
- fused_groups_*: with --fused-groups K1,K2,..: the 12 widths' forward and backward as the fused
  convolution (`discriminator.fused_conv=on`, the CUDA default) computes them, by K zero-padded
  convolutions (`fused_groups`, `padded_groups`), against the per-width `window_max` (CPU default);
- d_step_*: one D training step (loss, backward, fused Adam) of seqgan's CNN D, and of the
  ports-style D of bench/adversarial_step.py (12 `Conv2d`, per-tensor Adam); with
  --other-window-max FILE also seqgan's D step with FILE's `window_max` (e.g. an earlier commit's
  `git show REV:src/seqgan/models/window_max.py`), as d_step_seqgan_other;
- rollout_scoring_*: D's P(real) of 19 x 16 x 64 rollout rows by `prob_real` on the rows against
  `continuation_prob_real` (the windows inside each prefix shared; the same values bit for bit),
  and of 9 x 16 x 64 rows of 200 tokens rolled out from every 20th prefix (`rollout_stride: 20`).
Prints one JSON line.

    python bench/d_parts.py [--repeats 5] [--fused-groups 1,3,12] [--only fused_groups,d_step]
                            [--other-window-max FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from adversarial_step import D_EMB, PortDiscriminator, T, V
from seqgan.algorithms.base import adam
from seqgan.config import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS
from seqgan.models import discriminator
from seqgan.models.discriminator import CNNDiscriminator, continuation_prob_real, prob_real
from seqgan.models.window_max import window_max
from seqgan.runtime import configure

B, N = 64, 16


def widths_pair(rows: int, channels: int, widths: list[int], filters: list[int]) -> dict[str, Callable[[], None]]:
    x = torch.randn(rows, T, channels, requires_grad=True)
    weights = [torch.randn(n, channels, w, requires_grad=True) for w, n in zip(widths, filters, strict=True)]
    biases = [torch.randn(n, requires_grad=True) for n in filters]
    grads = [torch.randn(rows, n) for n in filters]

    def plain() -> None:
        xc = x.transpose(1, 2).contiguous()
        torch.autograd.backward([F.conv1d(xc, w, b).amax(dim=-1) for w, b in zip(weights, biases, strict=True)], grads)

    def ours() -> None:
        torch.autograd.backward([window_max(x, w, b) for w, b in zip(weights, biases, strict=True)], grads)

    return {"plain": plain, "window_max": ours}


def fused_groups(groups: list[int]) -> dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    per_width = CNNDiscriminator(V, D_EMB, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, fused_conv="off")
    ds = {"per_width": per_width}
    for k in groups:
        ds[f"k{k}"] = CNNDiscriminator(V, D_EMB, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, fused_conv="on", fused_groups=k)
        ds[f"k{k}"].load_state_dict(per_width.state_dict())
    emb = torch.randn(B, T, D_EMB, requires_grad=True)
    upstream = torch.randn(B, sum(PAPER_NUM_FILTERS))

    def run(d: CNNDiscriminator) -> Callable[[], None]:
        return lambda: torch.autograd.backward(d._pooled(emb), upstream)

    return {name: run(d) for name, d in ds.items()}


def d_steps(other_window_max: str | None = None) -> dict[str, Callable[[], None]]:
    x, is_real = torch.randint(0, V, (B, T)), torch.rand(B) < 0.5
    d = CNNDiscriminator(V, D_EMB, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, dropout=0.25).train()
    port = PortDiscriminator().train()
    d_opt, port_opt = adam(list(d.parameters()), 1e-4), torch.optim.Adam(port.parameters(), 1e-4, foreach=False)

    def ours() -> None:
        loss = d.loss(x, None, is_real, l2_reg=0.2)
        d_opt.zero_grad()
        loss.backward()
        d_opt.step()

    def reference() -> None:
        loss = F.cross_entropy(port(x), is_real.long()) + 0.1 * (port.out.weight.pow(2).sum() + port.out.bias.pow(2).sum())
        port_opt.zero_grad()
        loss.backward()
        port_opt.step()

    steps = {"seqgan": ours, "reference": reference}
    if other_window_max:
        spec = importlib.util.spec_from_file_location("other_window_max", other_window_max)
        other = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(other)

        def ours_other() -> None:
            current, discriminator.window_max = discriminator.window_max, other.window_max
            try:
                ours()
            finally:
                discriminator.window_max = current

        steps["seqgan_other"] = ours_other
    return steps


def scorings(length: int, stride: int) -> dict[str, Callable[[], None]]:
    d = CNNDiscriminator(V, D_EMB, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, dropout=0.25).eval()
    sequences, prefixes = torch.randint(0, V, (B, length)), (length - 1) // stride
    continued = sequences.repeat(prefixes * N, 1).view(prefixes, N, B, length).clone()
    for j in range(prefixes):
        t = (j + 1) * stride
        continued[j, :, :, t:] = torch.randint(0, V, (N, B, length - t))

    def rows() -> None:
        with torch.no_grad():
            prob_real(d, continued.reshape(-1, length), 1024)

    def shared() -> None:
        with torch.no_grad():
            continuation_prob_real(d, sequences, continued, stride, None, 1024)

    return {"rows": rows, "shared_prefixes": shared}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fused-groups", help="also time the fused convolution by these numbers of groups, e.g. 1,3,12")
    parser.add_argument("--only", help="time only these cases (comma-separated names, e.g. fused_groups,d_step)")
    parser.add_argument("--other-window-max", help="a window_max.py whose window_max the D step also runs with")
    args = parser.parse_args()
    configure(1)
    torch.manual_seed(0)
    cases = {
        "paper_widths": widths_pair(B, D_EMB, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS),
        "relgan_widths": widths_pair(B * 64, 1, [2, 3, 4, 5], [300] * 4),
        "d_step": d_steps(args.other_window_max),
        "rollout_scoring": scorings(T, 1),
        "rollout_scoring_t200_stride20": scorings(200, 20),
    }
    if args.fused_groups:
        cases = {"fused_groups": fused_groups([int(k) for k in args.fused_groups.split(",")])} | cases
    if args.only:
        cases = {case: fns for case, fns in cases.items() if case in args.only.split(",")}
    result: dict[str, float] = {}
    for case, fns in cases.items():
        for fn in fns.values():
            fn()  # warm-up: allocations, lookup tables
        times: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(args.repeats):
            for name, fn in fns.items():
                begin = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - begin)
        result |= {f"{case}_{name}_ms": round(1000 * statistics.median(t), 2) for name, t in times.items()}
    print(json.dumps({"threads": 1, "repeats": args.repeats, **result}))


if __name__ == "__main__":
    main()
