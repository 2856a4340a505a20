"""Scores of a source-conditioned (seq2seq) run against the reference target of each source.

For held-out pairs (x_i, y_i) and G's output g_i for x_i (sampled at a temperature, or greedy),
both rows laid out as the corpus encodes them (tokens, the end token, padding):
- exact_match: the fraction of sources whose output equals the reference to the end token;
- token_acc: the fraction of reference tokens (the end token included) that the output has at
  the same position; an output that stops early or runs on loses the positions it misses.
On a transduction with one right answer per source (`seqgan.data.transduction`) these score the
outputs exactly; on translation-like data they only count agreement with one reference.
"""

from __future__ import annotations

import torch

from seqgan.data.corpus import token_mask
from seqgan.models.generator import Generator


def match_counts(outputs: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """outputs, references (R, T) -> per row (exact match, tokens right, reference tokens): (R, 3) float."""
    same = outputs == references  # (R, T)
    counted = token_mask(references)  # up to and including the reference's end token
    exact = same.all(dim=1)  # past the end both hold padding: a longer output differs there
    return torch.stack([exact.float(), (same & counted).sum(dim=1).float(), counted.sum(dim=1).float()], dim=1)


@torch.no_grad()
def reference_match_sums(
    generator: Generator,
    sources: torch.Tensor,
    references: torch.Tensor,
    rng: torch.Generator,
    *,
    temperature: float,
    batch_size: int = 1000,
    top_k: int | None = None,
    top_p: float | None = None,
) -> list[float]:
    """G's outputs for sources (R, S) (temperature 0: greedy; top_k / top_p truncate sampling)
    against references (R, T): the sums [exact matches, tokens right, reference tokens, rows], which ranks add up."""
    generator.eval()
    outputs = generator.sample(
        len(sources),
        references.shape[1],
        rng,
        temperature=temperature,
        batch_size=batch_size,
        cond=sources,
        top_k=top_k,
        top_p=top_p,
    )
    return [*match_counts(outputs, references).sum(dim=0).tolist(), float(len(sources))]


def match_metrics(sums: list[float], suffix: str = "") -> dict[str, float]:
    """[exact, right, tokens, rows] -> {'exact_match' + suffix, 'token_acc' + suffix}."""
    exact, right, tokens, rows = sums
    return {f"exact_match{suffix}": exact / max(rows, 1.0), f"token_acc{suffix}": right / max(tokens, 1.0)}
