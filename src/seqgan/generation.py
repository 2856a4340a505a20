"""Samples of a generator for a run's data: drawn for the data's conditions, and written as lines.

A conditional run's samples are drawn for conditions of held-out rows (or for one given
condition); oracle samples print as token ids, text samples as decoded text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqgan.data.dataset import Data
from seqgan.data.text import decode_rows
from seqgan.models.condition import pick_index
from seqgan.models.generator import Generator


@dataclass
class Samples:
    """Sequences of G and, for a conditional run, the held-out rows whose conditions they were drawn for."""

    tokens: torch.Tensor  # (R, L)
    cond: torch.Tensor | None = None  # (R, ...)
    rows: torch.Tensor | None = None  # (R,) row numbers into data.cond_test

    def names(self, data: Data) -> list[str] | None:
        """The condition each sample was drawn for, as `seqgan sample --condition` takes it:
        'field=value,...', 'source=TEXT' or 'row=N'; None unless the conditions were drawn from the held-out set."""
        if self.rows is None:
            return None
        if data.condition.kind == "label":
            return data.condition.names(self.cond)
        if data.condition.kind == "source":
            return [f"source={text}" for text in decode_rows(data.text.tokenizer, self.cond)]
        return [f"row={r}" for r in self.rows.tolist()]


def sample_for_data(
    generator: Generator,
    data: Data,
    num: int,
    rng: torch.Generator,
    *,
    temperature: float = 1.0,
    batch_size: int = 1000,
    cond: torch.Tensor | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
) -> Samples:
    """`num` samples of G for a data set. A conditional run samples for the given condition
    `cond` (1, ...) repeated, or else for conditions of held-out rows drawn from `rng` first.
    top_k / top_p truncate each step's distribution (`seqgan.models.truncation`)."""
    cond, rows = conditions_for(data, num, rng, cond)
    tokens = generator.sample(
        num, data.length, rng, temperature=temperature, batch_size=batch_size, cond=cond, top_k=top_k, top_p=top_p
    )
    return Samples(tokens, cond, rows)


def conditions_for(
    data: Data, num: int, rng: torch.Generator, cond: torch.Tensor | None = None
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The conditions of `num` samples and, when drawn from the held-out set, their row numbers:
    the given `cond` (1, ...) repeated, or held-out rows drawn from `rng`; (None, None) for an
    unconditional run."""
    rows = None
    if data.cond_test is not None and cond is None:
        rows = pick_index(data.cond_test, num, rng)
        cond = data.cond_test[rows]
    elif cond is not None:
        cond = cond.to(data.train.device).expand(num, *cond.shape[1:])
    return cond, rows


def format_samples(samples: Samples, data: Data) -> list[str]:
    """Samples as lines: decoded text for corpora, space-separated ids for the oracle; samples drawn
    for conditions picked from the held-out set start with that condition and a tab."""
    if data.text is not None:
        lines = decode_rows(data.text.tokenizer, samples.tokens)
    else:
        lines = [" ".join(map(str, row)) for row in samples.tokens.tolist()]
    names = samples.names(data)
    return lines if names is None else [f"{name}\t{line}" for name, line in zip(names, lines, strict=True)]
