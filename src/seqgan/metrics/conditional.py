"""Metrics of the conditional SeqGAN on the conditional oracle (`seqgan.models.oracle`).

For samples y_i drawn from G(. | c_i), with the oracle's exact likelihood p_oracle(y | c):
- conditional NLL-oracle: -1 / (R T) sum_i log p_oracle(y_i | c_i), the oracle's per-token NLL of
  each sample under the condition it was asked for (the floor: the oracle's own samples);
- condition accuracy: how often the oracle's posterior picks the asked-for condition. Classes are
  equally likely, so the posterior's argmax is argmax_c' p_oracle(y | c'). Labels: c' ranges over
  all K classes (chance 1/K). Features: c' ranges over `candidates` vectors, the asked-for one and
  candidates - 1 others drawn at random from the held-out set's features (chance 1/candidates); a
  sample counts as correct only when the asked-for vector is strictly the most likely.
The oracle's own samples score its ceiling of condition accuracy. Both need one oracle pass per
candidate condition over the samples.
"""

from __future__ import annotations

import torch
from torch import nn

from seqgan.data.conditions import ConditionSpace
from seqgan.metrics.nll import mean_token_nll, sequence_log_probs, token_nll_sum
from seqgan.models.condition import pick_rows


def candidate_conditions(
    space: ConditionSpace, cond: torch.Tensor, pool: torch.Tensor, candidates: int, rng: torch.Generator
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The conditions the posterior chooses among for each sample, and which one was asked for.

    cond (R, ...) the asked-for conditions. Labels (one field): every class, the target is c.
    Features: cond itself first (target 0), then candidates - 1 rows of `pool` drawn from `rng`.
    Returns (K tensors like cond, target (R,) int64)."""
    R = len(cond)
    if space.kind == "label":
        if len(space.fields) != 1:
            raise ValueError("condition accuracy is defined for one label field (the conditional oracle's)")
        options = [torch.full_like(cond, k) for k in range(space.num_classes[0])]
        return options, cond[:, 0].clone()
    others = [pick_rows(pool, R, rng) for _ in range(candidates - 1)]
    return [cond, *others], torch.zeros(R, dtype=torch.long, device=cond.device)


@torch.no_grad()
def oracle_condition_scores(
    oracle: nn.Module,
    samples: torch.Tensor,
    cond: torch.Tensor,
    space: ConditionSpace,
    *,
    pool: torch.Tensor,
    candidates: int,
    rng: torch.Generator,
    batch_size: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: the oracle's NLL summed over its tokens given the asked-for condition (R,), and
    whether the posterior picks that condition (R,) bool. samples (R, T), cond (R, ...)."""
    options, target = candidate_conditions(space, cond, pool, candidates, rng)
    loglik = torch.stack([sequence_log_probs(oracle, samples, c, batch_size) for c in options], dim=1)  # (R, K)
    asked = loglik.gather(1, target[:, None]).squeeze(1)  # (R,)
    others = loglik.scatter(1, target[:, None], float("-inf")).amax(dim=1)  # (R,): the best other candidate
    return -asked, asked > others


def oracle_sample_metrics(
    oracle: nn.Module,
    samples: torch.Tensor,
    cond: torch.Tensor | None,
    space: ConditionSpace | None,
    *,
    pool: torch.Tensor | None,
    candidates: int,
    rng: torch.Generator,
    batch_size: int = 1000,
) -> dict:
    """NLL-oracle of samples (R, T) drawn for cond (R, ...); for a conditional run also cond_acc, and
    for labels both per condition ('per_condition': {'class=k': {...}})."""
    if space is None:
        return {"nll_oracle": mean_token_nll(oracle, samples, batch_size)}
    nll, hits = oracle_condition_scores(
        oracle, samples, cond, space, pool=pool, candidates=candidates, rng=rng, batch_size=batch_size
    )
    out: dict = {"nll_oracle": float(nll.sum()) / samples.numel(), "cond_acc": float(hits.float().mean())}
    if space.kind == "label":
        groups = group_rows(space.names(cond))
        out["per_condition"] = {
            name: {
                "num_samples": len(rows),
                "nll_oracle": float(nll[rows].mean()) / samples.shape[1],
                "cond_acc": float(hits[rows].float().mean()),
            }
            for name, rows in groups.items()
        }
    return out


def per_condition_nll(
    model: nn.Module,
    tokens: torch.Tensor,
    cond: torch.Tensor,
    space: ConditionSpace,
    temperature: float = 1.0,
    batch_size: int = 1000,
) -> dict:
    """Per label condition: the model's per-token NLL (logits divided by `temperature`) of the
    held-out rows (R, T) with that condition."""
    out = {}
    for name, rows in group_rows(space.names(cond)).items():
        total, count = token_nll_sum(model, tokens[rows], batch_size, temperature, cond[rows])
        out[name] = {"num_test": len(rows), "nll_test": total / max(count, 1)}
    return out


def group_rows(names: list[str]) -> dict[str, torch.Tensor]:
    """Row numbers (int64) of each distinct name, names in sorted order."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(name, []).append(i)
    return {name: torch.tensor(groups[name]) for name in sorted(groups)}
