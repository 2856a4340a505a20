"""Where a conditional-oracle G's class evidence sits, and whether its D's class judgement agrees
with the oracle's: one JSON line per run.

For `-n` samples of G (conditions drawn from the held-out set, temperature 1) and the run's
held-out real sequences:
- `cond_acc`: the oracle's posterior picks the asked-for class (as `seqgan evaluate`);
- `prefix_acc`: the same posterior from the first k tokens only, k = 1, 2, 3, 5, 10, 20;
- `first_tokens`: distinct first tokens per class (G's class cue, when it has learnt one);
- D, when the checkpoint's D has a class head (`discriminator.condition_join=classifier`):
  `d_class_acc_real` (its argmax on held-out real sequences), `d_class_on_samples` (its mean
  P(asked-for class | y) on G's samples) and `d_agrees_with_oracle` (its argmax equals the
  oracle's on G's samples).

    python experiments/cond_oracle_diagnose.py runs/cond_cls_si_seed0@2-adversarial-000040 runs/cond_mle_si_seed0 [-n 4000]

A study, not a benchmark: its results are in docs/conditional.md (a D with a class head).
"""

from __future__ import annotations

import argparse
import json

import torch

from seqgan.metrics.nll import sequence_log_probs
from seqgan.models.condition import pick_rows
from seqgan.training.experiment import load_discriminator, open_run

PREFIXES = (1, 2, 3, 5, 10, 20)


def class_log_likelihoods(oracle, tokens: torch.Tensor, num_classes: int) -> torch.Tensor:
    """log p_oracle(y_1..k | c) for every class and prefix length: tokens (R, T) -> (R, K, len(PREFIXES))."""
    per_token = torch.stack(
        [oracle.log_probs(tokens, cond=torch.full((len(tokens), 1), k, dtype=torch.long)) for k in range(num_classes)], dim=1
    )  # (R, K, T)
    cumulative = per_token.cumsum(dim=2)
    return torch.stack([cumulative[:, :, min(k, tokens.shape[1]) - 1] for k in PREFIXES], dim=2)


@torch.no_grad()
def diagnose(spec: str, num: int, seed: int) -> dict:
    run = open_run(spec)
    data, oracle = run.data, run.data.oracle
    if oracle is None or data.condition is None or data.condition.kind != "label":
        raise SystemExit(f"{spec}: not a run on the conditional oracle with labels")
    K = data.condition.num_classes[0]
    rng = torch.Generator().manual_seed(seed)
    cond = pick_rows(data.cond_test, num, rng)  # (R, 1)
    samples = run.generator.sample(num, data.length, rng, cond=cond)
    ll = class_log_likelihoods(oracle, samples, K)  # (R, K, P)
    right = ll.argmax(dim=1) == cond  # (R, P)
    full = sequence_log_probs(oracle, samples, cond)  # (R,): a check against the cumulative sums
    out = {
        "run": spec,
        "num_samples": num,
        "cond_acc": right[:, -1].float().mean().item(),
        "prefix_acc": {k: round(right[:, i].float().mean().item(), 4) for i, k in enumerate(PREFIXES)},
        "first_tokens": [len(set(samples[cond[:, 0] == k, 0].tolist())) for k in range(K)],
        "check_max_abs_diff": (full - ll.gather(1, cond[:, :, None].expand(-1, 1, len(PREFIXES)))[:, 0, -1]).abs().max().item(),
    }
    real, real_cond = data.test[:num], data.cond_test[:num]
    out["oracle_acc_real"] = (
        (class_log_likelihoods(oracle, real, K)[:, :, -1].argmax(dim=1) == real_cond[:, 0]).float().mean().item()
    )
    discriminator = load_discriminator(run)
    if getattr(discriminator, "classifier", None) is not None:
        on_real = discriminator.realness_and_head(real)[1].argmax(dim=1)
        on_samples = torch.softmax(discriminator.realness_and_head(samples)[1], dim=1)  # (R, K)
        out["d_class_acc_real"] = (on_real == real_cond[:, 0]).float().mean().item()
        out["d_class_on_samples"] = on_samples.gather(1, cond).mean().item()
        out["d_agrees_with_oracle"] = (on_samples.argmax(dim=1) == ll[:, :, -1].argmax(dim=1)).float().mean().item()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="DIR or DIR@CHECKPOINT of conditional-oracle runs")
    parser.add_argument("-n", type=int, default=4000, help="samples (and held-out real sequences) per run")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for spec in args.runs:
        print(json.dumps(diagnose(spec, args.n, args.seed)), flush=True)


if __name__ == "__main__":
    main()
