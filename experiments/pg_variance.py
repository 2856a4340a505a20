"""How noisy is one policy-gradient step under each baseline (adversarial.baseline)?

For a trained run's G and D (at the checkpoint named), draws --draws independent batches of
--batch sequences (conditions drawn from the training data's, as a G step draws them), rewards
each by --rollouts Monte Carlo rollouts per prefix scored by D (the rollout policy is G itself),
and takes the gradient of the PG loss with respect to G's weights under every baseline, on the
same batch and the same rewards (a paired comparison). Reports per baseline:
- signal_norm: |E g|, estimated without the noise's share as sqrt(mean_{i != j} g_i . g_j) (the
  norm of the draws' mean gradient, |g_bar|, is inflated by noise / sqrt(draws));
- noise_norm: sqrt(sum_i |g_i - g_bar|^2 / (draws - 1)), the spread of one step's gradient;
- snr: signal_norm / noise_norm (Adam rescales gradients, so their direction, not their size, is
  what a baseline can improve);
- cos_loo: the mean cosine between one draw's gradient and the mean of the other draws' (how
  well one step points where the expected gradient points; leave-one-out, so not inflated);
- cos_to_none: the cosine between this baseline's mean gradient and the no-baseline one's (all
  three estimate the same expected gradient, so this should tend to 1 as draws grow).
Ends by printing one JSON line.

    python experiments/pg_variance.py runs/feat_judge_prefix_s0@1-d_pretrain-000010 --batch 256 --rollouts 2 --draws 40

A study, not a benchmark: its results are in docs/conditional.md (the prefix baseline).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from seqgan.models.condition import pick_rows
from seqgan.models.discriminator import prob_real
from seqgan.rl.losses import pg_loss
from seqgan.rl.rollout import rollout_rewards
from seqgan.runtime import configure
from seqgan.training.experiment import load_discriminator, open_run

BASELINES = ("none", "mean", "prefix")


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="RUN or RUN@CHECKPOINT (G and D from that checkpoint)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rollouts", type=int, default=2)
    parser.add_argument("--draws", type=int, default=40, help=">= 2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.draws < 2:
        parser.error("--draws must be >= 2 (the spread needs two gradients)")
    run = open_run(args.run)
    configure(args.threads)
    g, d = run.generator, load_discriminator(run)
    chunk = run.config.adversarial.rollout_chunk  # rows per tensor operation, as in training
    params = [p for p in g.parameters() if p.requires_grad]
    rng = torch.Generator().manual_seed(args.seed)
    grads: dict[str, list[torch.Tensor]] = {b: [] for b in BASELINES}
    begin = time.perf_counter()
    for _ in range(args.draws):
        cond = pick_rows(run.data.cond_train, args.batch, rng)
        with torch.no_grad():
            samples, noise = g.sample(args.batch, run.data.length, rng, return_noise=True, cond=cond)
            rewards = rollout_rewards(
                g, lambda x, c: prob_real(d, x, chunk, c), samples, args.rollouts, rng, chunk_rows=chunk, noise=noise, cond=cond
            )  # (B, T)
        mask = g.mask(samples)
        log_probs = g.log_probs(samples, noise=noise, cond=cond)  # (B, T)
        for b in BASELINES:
            flat = torch.autograd.grad(pg_loss(log_probs, rewards, b, mask), params, retain_graph=True)
            grads[b].append(torch.cat([x.reshape(-1) for x in flat]))
    seconds = time.perf_counter() - begin
    result: dict = {"run": args.run, "batch": args.batch, "rollouts": args.rollouts, "draws": args.draws, "seed": args.seed}
    mean_none = torch.stack(grads["none"]).mean(0)
    for b in BASELINES:
        stack = torch.stack(grads[b])  # (n, P)
        n, total = len(stack), stack.sum(0)
        mean = total / n
        noise = ((stack - mean).pow(2).sum() / (n - 1)).sqrt().item()
        signal = max(0.0, (total.pow(2).sum() - stack.pow(2).sum()).item() / (n * (n - 1))) ** 0.5
        loo = [cosine(stack[i], (total - stack[i]) / (n - 1)) for i in range(n)]
        result[b] = {
            "signal_norm": round(signal, 6),
            "noise_norm": round(noise, 6),
            "snr": round(signal / noise, 4),
            "cos_loo": round(sum(loo) / len(loo), 4),
            "cos_to_none": round(cosine(mean, mean_none), 4),
        }
        print(b, result[b], flush=True)
    result["threads"], result["seconds"] = args.threads, round(seconds, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
