"""Language-model scores of a run's samples against a reference run (ScratchGAN, de Masson
d'Autume et al. 2019, Sec. 4, after Cífka et al. 2018), for corpora where no oracle knows the truth:

- LM score (quality): the reference LM's mean per-token NLL of the run's samples, in nats.
  With an MLE run as the reference it is the text analogue of NLL-oracle: lower means samples the
  real-data model finds likely. Collapsed, repetitive samples score well here.
- reverse LM score (diversity and coverage): a fresh LM of the reference's architecture is trained
  by MLE on the samples alone, `LMTraining.epochs` passes, then its mean per-token NLL of the run's
  held-out test set is taken. Samples that cover the data's variety train an LM that predicts real
  text; collapsed ones do not. Calibration: the reference run evaluated against itself
  (`seqgan evaluate REF --lm-scorer REF`) gives the score of MLE samples of the same number.

Both are per token, padding left out and the end token counted, as NLL-test. The two runs must
share their test set (the same corpus, split and tokenizer, or the same oracle data).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqgan.algorithms.build import make_generator
from seqgan.algorithms.common import mle_epoch
from seqgan.config import ConfigError
from seqgan.metrics.nll import mean_token_nll
from seqgan.models.generator import Generator
from seqgan.training.experiment import Run


@dataclass(frozen=True)
class LMTraining:
    """How the reverse LM learns from the samples (the reference's MLE settings by default)."""

    epochs: int
    batch_size: int
    lr: float
    grad_clip: float


def check_comparable(run: Run, reference: Run) -> None:
    """The two runs must share their test set, token for token, and be unconditional."""
    if run.data.condition is not None or reference.data.condition is not None:
        raise ConfigError("--lm-scorer: language-model scores are for unconditional runs")
    a, b = run.data.test, reference.data.test
    if a.shape != b.shape or not torch.equal(a.cpu(), b.cpu()):
        raise ConfigError(
            f"--lm-scorer {reference.dir}: its test set differs from {run.dir}'s (another corpus, split, tokenizer or "
            "oracle); score runs trained on the same data"
        )


def lm_score(scorer: Generator, samples: torch.Tensor, batch_size: int = 1000) -> float:
    """The scorer's mean per-token NLL of samples (R, T)."""
    return mean_token_nll(scorer, samples, batch_size)


def reverse_lm_score(lm: Generator, samples: torch.Tensor, test: torch.Tensor, settings: LMTraining, seed: int) -> float:
    """Train `lm` (fresh) on samples (R, T) only, then its mean per-token NLL of test (R', T)."""
    if len(samples) < settings.batch_size:
        raise ConfigError(
            f"-n {len(samples)}: the reverse LM trains in batches of {settings.batch_size}; draw at least that many"
        )
    optimizer = torch.optim.Adam(lm.parameters(), lr=settings.lr)
    shuffle = torch.Generator().manual_seed(seed)
    for _ in range(settings.epochs):
        mle_epoch(lm, optimizer, samples, settings.batch_size, settings.grad_clip, shuffle)
    lm.eval()
    return mean_token_nll(lm, test)


def lm_scores(run: Run, reference: Run, samples: torch.Tensor, epochs: int, seed: int) -> dict[str, float]:
    """`lm_score` and `reverse_lm_score` of the run's samples (R, T) with the reference run's G as
    the scorer and its architecture and MLE settings for the reverse LM."""
    check_comparable(run, reference)
    cfg = reference.config
    settings = LMTraining(epochs, cfg.pretrain.batch_size, cfg.pretrain.lr, cfg.pretrain.grad_clip)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lm = make_generator(cfg, reference.data).to(samples.device)
    scores = {"lm_score": lm_score(reference.generator, samples, cfg.eval.batch_size)}
    if epochs > 0:
        scores["reverse_lm_score"] = reverse_lm_score(lm, samples, run.data.test, settings, seed)
        scores["reverse_lm_epochs"] = epochs
    return scores
