"""Text metrics of a generator on a corpus run, each defined in `seqgan.metrics.text`:

- bleu{n}_test: BLEU-n (n = 2..5) of the samples against the test lines (Texygen protocol);
- bleu{n}_heldout: the same against the held-out lines of the training file;
- self_bleu{n}: Self-BLEU-n of the samples;
- distinct{n} (n = 1..4), copy_rate (samples equal to a training line), length statistics
  (in BLEU units: words, or characters for char-level corpora, without the end token).
`quick_text_metrics` is the subset logged during training (BLEU against the test lines).
A conditional run's samples are drawn for the conditions of test lines picked at random.
"""

from __future__ import annotations

import torch

from seqgan.data.text import TextData, decode_rows, text_units
from seqgan.metrics import text as tm
from seqgan.models.condition import pick_rows
from seqgan.models.generator import Generator

ORDERS = (2, 3, 4, 5)


def sample_units(
    generator: Generator, data: TextData, n: int, rng: torch.Generator, temperature: float, batch_size: int
) -> list[list[str]]:
    cond = pick_rows(data.cond_test, n, rng)  # TextData lives on the CPU; G and rng on the run's device
    cond = None if cond is None else cond.to(rng.device)
    samples = generator.sample(n, data.train.shape[1], rng, temperature, batch_size, cond=cond)
    return [text_units(s, data.tokenizer.kind) for s in decode_rows(data.tokenizer, samples)]


def _refs(lines: list[str], kind: str) -> list[list[str]]:
    return [text_units(line, kind) for line in lines]


def quick_text_metrics(generator: Generator, data: TextData, n: int, rng: torch.Generator, batch_size: int) -> dict[str, float]:
    hyps = sample_units(generator, data, n, rng, 1.0, batch_size)
    return {f"bleu{k}_test": v for k, v in tm.bleu(hyps, _refs(data.test_lines, data.tokenizer.kind), ORDERS).items()}


def full_text_metrics(
    generator: Generator, data: TextData, n: int, rng: torch.Generator, temperature: float, batch_size: int
) -> dict[str, float]:
    kind = data.tokenizer.kind
    hyps = sample_units(generator, data, n, rng, temperature, batch_size)
    out: dict[str, float] = {}
    out |= {f"bleu{k}_test": v for k, v in tm.bleu(hyps, _refs(data.test_lines, kind), ORDERS).items()}
    out |= {f"bleu{k}_heldout": v for k, v in tm.bleu(hyps, _refs(data.heldout_lines, kind), ORDERS).items()}
    out |= {f"self_bleu{k}": v for k, v in tm.self_bleu(hyps, ORDERS).items()}
    out |= {f"distinct{k}": tm.distinct_n(hyps, k) for k in (1, 2, 3, 4)}
    out["copy_rate"] = tm.copy_rate(hyps, _refs(data.train_lines, kind))
    out |= {f"length_{k}": v for k, v in tm.length_stats(hyps).items()}
    return out
