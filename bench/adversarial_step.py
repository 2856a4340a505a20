"""Benchmark: seqgan's training steps at the paper's sizes against a ports-style reference, on CPU or CUDA.

Paper sizes: batch 64, N = 16 rollouts, T = 20, V = 5000, G an LSTM 32/32, D the paper's CNN
(12 widths, 1,720 filters, highway, dropout 0.25). Timed in one process, on one device, medians of
--repeats (CUDA work synchronised before each clock read). The G step, D epoch and MLE epoch
alternate with the reference's (seqgan's, the reference's, seqgan's, ...), so that both see the
machine in the same state: on a shared virtual machine its speed drifts by a fifth within minutes.

seqgan, as a run trains:
- g_step_seconds: one policy-gradient step (batched rollouts by inverse-CDF sampling, D scoring in
  chunks, PG update, rollout-policy update);
- d_epoch_seconds: one D epoch over 20,000 sequences (10,000 real + 10,000 generated), batch 64;
- mle_epoch_seconds: one MLE epoch over 10,000 sequences, batch 64;
- sample_seconds: drawing 10,000 sequences (D's negatives; the evaluation's samples);
- eval_seconds: 10,000 samples and their NLL under an oracle-sized LSTM (one evaluation);
- adversarial_epoch_seconds: one paper adversarial epoch, 1 G step + 5 x (10,000 negatives,
  3 D epochs), measured with --paper-epoch, else estimated from the parts above;
- protocol_seconds: the paper's whole schedule as configs/oracle_seqgan.yaml sets it (MLE epochs,
  D pre-training rounds, adversarial epochs, an evaluation every eval.every epochs), estimated
  from the parts.

The reference, kept here as the public ports write it (naive_*):
- naive_g_step_seconds: for each of the N rollouts and each prefix length t, re-run an `nn.LSTM`
  policy from the start over the batch (the prefix forced, the rest drawn with `torch.multinomial`)
  and score those 64 sequences with D; then the same update;
- naive_d_epoch_seconds: the paper CNN as 12 `Conv2d` over (B, 1, T, E), trained at batch 64 over
  20,000 sequences with Adam's per-tensor loop;
- naive_mle_epoch_seconds: `nn.LSTM` + cross-entropy over 10,000 sequences, batch 64.
Ratios of the medians, naive / seqgan, are printed as *_speedup. Ends by printing one JSON line.

On CUDA the D and MLE steps run as CUDA graphs as a training run takes them (`cuda_graphs: true`,
`seqgan.cuda_graphs`), captured in an untimed first epoch each; --cuda-graphs off times them eagerly.

    python bench/adversarial_step.py [--device cpu|cuda] [--threads 1] [--repeats 3] [--precision fp32|bf16]
                                     [--fused-conv auto|on|off] [--fused-groups K] [--cuda-graphs on|off] [--skip-naive]
                                     [--paper-epoch] [--d-precision fp32|bf16]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from seqgan.algorithms.base import adam
from seqgan.algorithms.build import COMPUTE_DTYPES
from seqgan.algorithms.common import DRound, Streams, discriminator_epochs, mle_epoch, round_examples
from seqgan.algorithms.seqgan import Players, policy_gradient_step
from seqgan.config import D_PRECISIONS, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, AdversarialConfig, load_config
from seqgan.cuda_graphs import StepGraphs, d_step_precision, step_graphs_apply
from seqgan.distributed import SINGLE
from seqgan.models.discriminator import CNNDiscriminator, Highway
from seqgan.models.generator import Generator, frozen_copy
from seqgan.runtime import autocast, configure, set_numerics

B, N, T, V, E, H = 64, 16, 20, 5000, 32, 32
D_EMB = 64
NUM_REAL = 10_000
PAPER_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "oracle_seqgan.yaml"


def clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        begin = clock(device)
        fn()
        times.append(clock(device) - begin)
    return statistics.median(times)


# ---------------------------------------------------------------- the ports-style reference


class PortGenerator(nn.Module):
    """The public ports' G: embedding, `nn.LSTM`, a linear output layer."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, batch_first=True)
        self.out = nn.Linear(H, V)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T) -> logits (B, T, V), teacher forced
        start = torch.zeros(len(x), 1, dtype=torch.long, device=x.device)
        return self.out(self.lstm(self.embedding(torch.cat([start, x[:, :-1]], dim=1)))[0])

    def step(self, token: torch.Tensor, state):  # (B,) -> logits (B, V)
        out, state = self.lstm(self.embedding(token)[:, None], state)
        return self.out(out[:, 0]), state


class PortHighway(Highway):
    """The ports' highway layer, written as the paper's code writes it: t * relu(W_h x) + (1 - t) * x
    (seqgan's `Highway` has the same layers, and computes the same values in fewer passes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        return t * F.relu(self.transform(x)) + (1.0 - t) * x


class PortDiscriminator(nn.Module):
    """The public ports' D: the paper's CNN as one `Conv2d` per width over (B, 1, T, E)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(V, D_EMB)
        self.convs = nn.ModuleList(
            nn.Conv2d(1, n, (w, D_EMB)) for w, n in zip(PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, strict=True)
        )
        self.highway = PortHighway(sum(PAPER_NUM_FILTERS))
        self.dropout = nn.Dropout(0.25)
        self.out = nn.Linear(sum(PAPER_NUM_FILTERS), 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(x).unsqueeze(1)  # (B, 1, T, E)
        pooled = [F.relu(conv(emb)).squeeze(3).max(dim=2)[0] for conv in self.convs]
        return self.out(self.dropout(self.highway(torch.cat(pooled, dim=1))))


def naive_mle_epoch(g: PortGenerator, opt: torch.optim.Optimizer, data: torch.Tensor) -> None:
    for i in range(0, len(data) - B + 1, B):
        batch = data[i : i + B]
        loss = F.cross_entropy(g(batch).reshape(-1, V), batch.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(g.parameters(), 5.0)
        opt.step()


def naive_d_epoch(d: PortDiscriminator, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    for i in range(0, len(x) - B + 1, B):
        loss = F.cross_entropy(d(x[i : i + B]), y[i : i + B]) + 0.2 * 0.5 * (d.out.weight.pow(2).sum() + d.out.bias.pow(2).sum())
        opt.zero_grad()
        loss.backward()
        opt.step()


@torch.no_grad()
def naive_rollout(policy: PortGenerator, tokens: torch.Tensor, given: int) -> torch.Tensor:
    """Run from the start token, force the first `given` tokens, draw the rest with multinomial."""
    out = tokens.clone()
    token, state = torch.zeros(len(tokens), dtype=torch.long, device=tokens.device), None
    for t in range(T):
        logits, state = policy.step(token, state)
        token = tokens[:, t] if t < given else torch.multinomial(torch.softmax(logits, -1), 1).squeeze(1)
        out[:, t] = token
    return out


def naive_g_step(g: PortGenerator, rollout: PortGenerator, d: PortDiscriminator, opt: torch.optim.Optimizer) -> None:
    with torch.no_grad():
        samples = naive_rollout(g, torch.zeros(B, T, dtype=torch.long, device=g.out.weight.device), 0)
        d.eval()
        rewards = torch.zeros(T, B, device=samples.device)
        for _ in range(N):
            for given in range(1, T):
                rewards[given - 1] += torch.softmax(d(naive_rollout(rollout, samples, given)), -1)[:, 1]
            rewards[T - 1] += torch.softmax(d(samples), -1)[:, 1]
    log_probs = F.log_softmax(g(samples), -1).gather(2, samples[:, :, None]).squeeze(2)  # (B, T)
    loss = -(log_probs * (rewards / N).T).mean()
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(g.parameters(), 5.0)
    opt.step()
    with torch.no_grad():
        for p, q in zip(rollout.parameters(), g.parameters(), strict=True):
            p.mul_(0.8).add_(q, alpha=0.2)


def reference(device: torch.device, real: torch.Tensor, fake: torch.Tensor) -> dict[str, Callable[[], object]]:
    """The reference's G step, D epoch and MLE epoch, each ready to run (and on CUDA run once, untimed:
    cuDNN's choices)."""
    g, rollout, d = PortGenerator().to(device), PortGenerator().to(device), PortDiscriminator().to(device)
    rollout.load_state_dict(g.state_dict())
    g_opt, d_opt = torch.optim.Adam(g.parameters(), 0.01, foreach=False), torch.optim.Adam(d.parameters(), 1e-4, foreach=False)
    x, y = torch.cat([real, fake]), torch.cat([torch.ones(len(real)), torch.zeros(len(fake))]).long().to(device)
    perm = torch.randperm(len(x), device=device)

    def d_epoch() -> None:
        d.train()  # the G step leaves D in eval mode
        naive_d_epoch(d, d_opt, x[perm], y[perm])

    parts = {
        "g_step": lambda: naive_g_step(g, rollout, d, g_opt),
        "d_epoch": d_epoch,
        "mle_epoch": lambda: naive_mle_epoch(g, g_opt, real),
    }
    if device.type == "cuda":
        for part in parts.values():
            part()
    return parts


# ---------------------------------------------------------------- seqgan


def seqgan_parts(
    args: argparse.Namespace, device: torch.device, real: torch.Tensor
) -> tuple[dict[str, Callable[[], object]], dict[str, Callable[[], float]]]:
    """seqgan's G step, D epoch and MLE epoch ready to run (warmed up), and the timings of the rest."""
    generator = Generator(V, E, H).to(device)
    d = CNNDiscriminator(
        V, D_EMB, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, dropout=0.25, fused_conv=args.fused_conv, fused_groups=args.fused_groups
    ).to(device)
    d.compute_dtype = COMPUTE_DTYPES[args.d_precision]
    players = Players(generator, frozen_copy(generator), d)
    oracle = Generator(V, E, H, init_std=1.0).to(device).requires_grad_(False)
    g_opt, d_opt, mle_opt = (
        adam(list(generator.parameters()), 0.01),
        adam(list(d.parameters()), 1e-4),
        adam(list(generator.parameters()), 0.01),
    )
    streams = Streams(sample=torch.Generator(device).manual_seed(0), shuffle=torch.Generator().manual_seed(0))
    adversarial, d_round = AdversarialConfig(batch_size=B, rollout_num=N), DRound(NUM_REAL, 1, 64, l2_reg=0.2)
    examples = round_examples(generator, real, None, d_round, streams, SINGLE)
    d_graphs, mle_graphs = (
        StepGraphs(opt, after) if step_graphs_apply(opt, False, precision, args.cuda_graphs == "on") else None
        for opt, after, precision in (
            (d_opt, d.weights_changed, d_step_precision(args.precision, args.d_precision)),
            (mle_opt, None, args.precision),
        )
    )

    def run(fn: Callable[[], object]) -> Callable[[], object]:
        def wrapped() -> object:
            with autocast(device, args.precision):
                return fn()

        return wrapped

    def evaluate() -> None:
        with torch.no_grad():
            oracle.log_probs(generator.sample(NUM_REAL, T, streams.sample))

    def paper_epoch() -> None:
        policy_gradient_step(players, g_opt, adversarial, T, streams)
        for _ in range(5):
            discriminator_epochs(
                d,
                d_opt,
                round_examples(generator, real, None, d_round, streams, SINGLE),
                DRound(NUM_REAL, 3, 64, l2_reg=0.2),
                streams,
                graphs=d_graphs,
            )

    parts = {
        "g_step": run(lambda: policy_gradient_step(players, g_opt, adversarial, T, streams)),
        "d_epoch": run(lambda: discriminator_epochs(d, d_opt, examples, d_round, streams, graphs=d_graphs)),
        "mle_epoch": run(lambda: mle_epoch(generator, mle_opt, real, 64, 5.0, streams.shuffle, graphs=mle_graphs)),
    }
    parts["g_step"]()  # warm-up (allocations, CUDA kernels, lookup tables)
    if device.type == "cuda":  # cuDNN's choices, and the CUDA graphs' capture, out of the timings
        parts["d_epoch"]()
        parts["mle_epoch"]()
    others = {
        "sample_seconds": lambda: timed(lambda: generator.sample(NUM_REAL, T, streams.sample), args.repeats, device),
        "eval_seconds": lambda: timed(evaluate, max(1, args.repeats // 3), device),
    }
    if args.paper_epoch:
        others["adversarial_epoch_seconds"] = lambda: timed(run(paper_epoch), 1, device)
    return parts, others


def paired(
    ours: dict[str, Callable[[], object]], naive: dict[str, Callable[[], object]], repeats: int, device: torch.device
) -> dict[str, float]:
    """Each part's seconds, seqgan's and the reference's in turn, `repeats` times: medians as
    {part}_seconds and naive_{part}_seconds (without a reference, seqgan's alone)."""
    times: dict[str, list[float]] = {}
    for part in ours:
        for _ in range(repeats):
            for name, fn in ((f"{part}_seconds", ours[part]), (f"naive_{part}_seconds", naive.get(part))):
                if fn is not None:
                    times.setdefault(name, []).append(timed(fn, 1, device))
    return {name: statistics.median(t) for name, t in times.items()}


def protocol_seconds(parts: dict[str, float]) -> float:
    """The paper schedule of configs/oracle_seqgan.yaml from the measured parts."""
    cfg = load_config(PAPER_CONFIG)
    d_round = parts["sample_seconds"] + cfg.d_pretrain.epochs * parts["d_epoch_seconds"]
    adversarial = parts.get("adversarial_epoch_seconds", parts["adversarial_epoch_estimate_seconds"])
    evaluations = (cfg.pretrain.epochs + cfg.adversarial.epochs) // cfg.eval.every
    return (
        cfg.pretrain.epochs * parts["mle_epoch_seconds"]
        + cfg.d_pretrain.steps * d_round
        + cfg.adversarial.epochs * adversarial
        + evaluations * parts["eval_seconds"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "tf32", "bf16"))
    parser.add_argument(
        "--d-precision",
        default=None,
        choices=D_PRECISIONS,
        help="D's own precision (discriminator.precision); G keeps --precision",
    )
    parser.add_argument("--fused-conv", default="auto", choices=("auto", "on", "off"))
    parser.add_argument(
        "--fused-groups", type=int, default=1, help="padded convolutions of the fused D (discriminator.fused_groups)"
    )
    parser.add_argument("--cuda-graphs", default="on", choices=("on", "off"), help="CUDA: D and MLE steps as CUDA graphs")
    parser.add_argument("--skip-naive", action="store_true", help="leave out the ports-style reference")
    parser.add_argument("--paper-epoch", action="store_true", help="also time one whole paper adversarial epoch")
    args = parser.parse_args()
    configure(args.threads)
    set_numerics(args.precision, False)
    device = torch.device(args.device)
    torch.manual_seed(0)
    real = Generator(V, E, H, init_std=1.0).sample(NUM_REAL, T, torch.Generator().manual_seed(1)).to(device)
    result: dict[str, object] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": args.threads,
        "precision": args.precision,
        "d_precision": args.d_precision,
        "fused_conv": args.fused_conv,
        "fused_groups": args.fused_groups,
        "cuda_graphs": args.cuda_graphs if device.type == "cuda" else "n/a",
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    ours, others = seqgan_parts(args, device, real)
    naive = {}
    if not args.skip_naive:
        fake = Generator(V, E, H).to(device).sample(NUM_REAL, T, torch.Generator(device).manual_seed(2))
        naive = reference(device, real, fake)
    parts = paired(ours, naive, args.repeats, device)
    parts |= {name: measure() for name, measure in others.items()}
    parts["adversarial_epoch_estimate_seconds"] = parts["g_step_seconds"] + 5 * (
        parts["sample_seconds"] + 3 * parts["d_epoch_seconds"]
    )
    parts["protocol_seconds"] = protocol_seconds(parts)
    for key in naive:
        parts[f"{key}_speedup"] = parts[f"naive_{key}_seconds"] / parts[f"{key}_seconds"]
    result |= {k: round(v, 4) for k, v in parts.items()}
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
