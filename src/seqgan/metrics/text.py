"""Text metrics of generated samples: BLEU-n, Self-BLEU-n, distinct-n, copy rate, lengths.

All functions take samples as lists of token strings (one list per sentence) and use every
sample given: no sub-sampling, so results depend only on the inputs.

- BLEU-n (Texygen / RelGAN protocol, Zhu et al. 2018): each hypothesis is scored by sentence BLEU
  against the whole reference set (clipped n-gram counts against the maximum count in any
  reference; brevity penalty against the reference length closest to the hypothesis, ties to the
  shorter), with equal weights 1/n over 1..n-grams and smoothing "method1" of Chen & Cherry (2014):
  a precision with no matching n-gram counts as 0.1 / (number of hypothesis n-grams). A hypothesis
  with no matching unigram scores 0. The reported value is the mean over hypotheses.
- Self-BLEU-n (Zhu et al. 2018): the same, with sample i scored against all other samples
  (by position: an identical copy elsewhere in the set still counts as a reference).
- distinct-n: unique n-grams / total n-grams, pooled over all samples (Li et al. 2016).
- unique fraction: distinct samples / samples (1: no two samples alike; mode collapse lowers it).
- copy rate: the fraction of samples identical (token for token) to some training sequence.
- lengths: mean, population std, min and max number of tokens per sample.

BLEU is computed with `fast_bleu` (C++, multithreaded). fast-bleu stores the weights in 32-bit
floats, which moves BLEU-3 and BLEU-5 (weights 1/3, 1/5) by about 1e-8 from NLTK. To avoid that,
each n-gram order k is scored alone (one-hot weights, exact in float32: the score is
BP * p_k) and BLEU-n is the geometric mean of the first n of those in double precision. The
result equals NLTK's `sentence_bleu(references, hypothesis, weights=(1/n,)*n,
smoothing_function=SmoothingFunction().method1)` averaged over hypotheses, to about 1e-16 (the
tests check 1e-12), and Self-BLEU equally with the other samples as references.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import sys
from collections import Counter
from collections.abc import Sequence

Sentences = Sequence[Sequence[str]]
DEFAULT_ORDERS = (2, 3, 4, 5)


def _one_hot_weights(max_n: int) -> dict[int, tuple[float, ...]]:
    return {k: tuple(1.0 if i == k else 0.0 for i in range(max_n)) for k in range(max_n)}


def _check_orders(orders: Sequence[int]) -> int:
    if not orders or min(orders) < 2:
        raise ValueError(f"BLEU orders {list(orders)}: fast-bleu needs n >= 2; use orders like (2, 3, 4, 5)")
    return max(orders)


def _bleu_from_orders(per_order: dict[int, list[float]], orders: Sequence[int]) -> dict[int, float]:
    """Mean over sentences of the geometric mean of BP * p_k for k < n, for each n in `orders`."""
    count = len(per_order[0])
    result = {}
    for n in orders:
        scores = []
        for i in range(count):
            parts = [per_order[k][i] for k in range(n)]
            scores.append(0.0 if min(parts) <= 0.0 else math.exp(math.fsum(math.log(p) for p in parts) / n))
        result[n] = math.fsum(scores) / count
    return result


@contextlib.contextmanager
def _real_stderr():
    """fast-bleu calls faulthandler.enable(), which needs sys.stderr to have a file descriptor;
    under Jupyter or captured output it has none, so lend it the process's own stderr meanwhile."""
    try:
        sys.stderr.fileno()
        yield
    except (AttributeError, OSError, ValueError):
        saved, sys.stderr = sys.stderr, sys.__stderr__
        try:
            yield
        finally:
            sys.stderr = saved


def bleu(hypotheses: Sentences, references: Sentences, orders: Sequence[int] = DEFAULT_ORDERS) -> dict[int, float]:
    """{n: BLEU-n} of `hypotheses` against the reference set, averaged over hypotheses."""
    from fast_bleu import BLEU

    max_n = _check_orders(orders)
    if not hypotheses or not references:
        raise ValueError(f"BLEU needs hypotheses and references; got {len(hypotheses)} and {len(references)}")
    with _real_stderr():
        per_order = BLEU([list(r) for r in references], _one_hot_weights(max_n)).get_score([list(h) for h in hypotheses])
    return _bleu_from_orders(per_order, orders)


def self_bleu(samples: Sentences, orders: Sequence[int] = DEFAULT_ORDERS) -> dict[int, float]:
    """{n: Self-BLEU-n}: each sample against all the other samples, averaged over samples."""
    from fast_bleu import SelfBLEU

    max_n = _check_orders(orders)
    if len(samples) < 2:
        raise ValueError(f"Self-BLEU needs at least 2 samples, got {len(samples)}")
    with _real_stderr():
        per_order = SelfBLEU([list(s) for s in samples], _one_hot_weights(max_n)).get_score()
    return _bleu_from_orders(per_order, orders)


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(samples: Sentences, n: int) -> float:
    """Unique n-grams / all n-grams over `samples`; 0.0 when no sample has n tokens."""
    counts = Counter(g for s in samples for g in ngrams(s, n))
    total = sum(counts.values())
    return len(counts) / total if total else 0.0


def unique_fraction(samples: Sentences) -> float:
    """Distinct samples (token for token) / samples."""
    if not samples:
        raise ValueError("the unique fraction of no samples is undefined; generate at least one sample")
    return len({tuple(s) for s in samples}) / len(samples)


def sequence_diversity(samples: Sentences) -> dict[str, float]:
    """distinct1..4 and unique_frac of samples (words, characters or an oracle's token ids)."""
    return {f"distinct{n}": distinct_n(samples, n) for n in (1, 2, 3, 4)} | {"unique_frac": unique_fraction(samples)}


def copy_rate(samples: Sentences, training: Sentences) -> float:
    """Fraction of `samples` that appear verbatim (same token list) in `training`."""
    if not samples:
        raise ValueError("copy rate of no samples is undefined; generate at least one sample")
    seen = {tuple(t) for t in training}
    return sum(tuple(s) in seen for s in samples) / len(samples)


def length_stats(samples: Sentences) -> dict[str, float]:
    """Mean, population std, min and max of the sample lengths in tokens."""
    if not samples:
        raise ValueError("length statistics of no samples are undefined; generate at least one sample")
    lengths = [len(s) for s in samples]
    return {
        "mean": statistics.fmean(lengths),
        "std": statistics.pstdev(lengths),
        "min": float(min(lengths)),
        "max": float(max(lengths)),
    }
