"""What a run measures of G while it trains, on its own evaluation stream.

- oracle runs: NLL-oracle of `eval.num_samples` samples (the conditional oracle: its NLL given the
  asked-for condition, and cond_acc), and unique_frac of those samples;
- every run: NLL-test (and NLL-valid with a validation set), G's per-token NLL of held-out data;
- text runs: BLEU against the test lines, Self-BLEU, distinct-n of `eval.bleu_samples` samples;
- source-conditioned runs: exact match and token accuracy of G's outputs for each test source,
  sampled and greedy.
Under torchrun every rank evaluates its part and the parts are summed; BLEU is computed on rank 0.
What evaluation adds about D comes from the algorithm (`Algorithm.discriminator_metrics`).
"""

from __future__ import annotations

import torch

from seqgan import distributed
from seqgan.config import ExperimentConfig
from seqgan.data.dataset import Data
from seqgan.distributed import Dist
from seqgan.generation import sample_for_data
from seqgan.metrics.conditional import oracle_condition_scores
from seqgan.metrics.nll import nll_test, token_nll_sum
from seqgan.metrics.seq2seq import match_metrics, reference_match_sums
from seqgan.metrics.text import unique_fraction
from seqgan.metrics.text_eval import quick_text_metrics
from seqgan.models.generator import Generator

EVAL_SEED_OFFSET = 7919  # evaluation samples use their own fixed stream, apart from training's


def eval_generator(cfg: ExperimentConfig, device: torch.device) -> torch.Generator:
    """The evaluation stream of rank 0 (and of `seqgan sample`'s final samples)."""
    return torch.Generator(device).manual_seed(cfg.seed + EVAL_SEED_OFFSET)


class Evaluator:
    def __init__(self, cfg: ExperimentConfig, data: Data, dist: Dist, device: torch.device) -> None:
        self.cfg, self.data, self.dist, self.device = cfg, data, dist, device

    def rng(self) -> torch.Generator:
        """A fresh evaluation stream; rank r > 0 draws its own part with its own seed."""
        rng = eval_generator(self.cfg, self.device)
        return rng if self.dist.is_main() else rng.manual_seed(self.dist.seed(rng.initial_seed()))

    def nll(self, model: torch.nn.Module, tokens: torch.Tensor, cond: torch.Tensor | None) -> float:
        """Mean per-token NLL of tokens (R, T) given their conditions (R, ...) or None, each rank scoring its part."""
        part = self.dist.part(len(tokens))
        total, count = token_nll_sum(model, tokens[part], cond=None if cond is None else cond[part])
        total, count = distributed.all_reduce_sum([total, count], self.dist, self.device)
        return total / max(count, 1)

    def condition_scores(
        self, samples: torch.Tensor, cond: torch.Tensor, rng: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The conditional oracle's NLL sum (R,) and posterior hit (R,) of samples drawn for cond (R, ...)."""
        data, c = self.data, self.cfg.condition
        return oracle_condition_scores(
            data.oracle,
            samples,
            cond,
            data.condition,
            pool=data.cond_test,
            candidates=c.candidates,
            rng=rng,
            batch_size=self.cfg.eval.batch_size,
        )

    def oracle_floor(self) -> dict[str, float]:
        """The floor of NLL-oracle: the oracle's own per-token NLL on its held-out samples (and the
        ceiling of condition accuracy: the oracle's on its own samples)."""
        data = self.data
        floor = {"oracle_nll_test": nll_test(data.oracle, data.test, cond=data.cond_test), "num_test": len(data.test)}
        if data.condition is not None:
            _, hits = self.condition_scores(data.test, data.cond_test, eval_generator(self.cfg, self.device))
            floor["oracle_cond_acc"] = float(hits.float().mean())
        return floor

    def generator_metrics(self, generator: Generator, rng: torch.Generator) -> dict[str, float]:
        """Every metric of G this run logs (module docstring), drawing from `rng`."""
        cfg, data = self.cfg, self.data
        generator.eval()
        out: dict[str, float] = {}
        if data.oracle is not None:
            out |= self._oracle_metrics(generator, rng)
        out["nll_test"] = self.nll(generator, data.test, data.cond_test)
        if data.valid is not None:
            out["nll_valid"] = self.nll(generator, data.valid, data.cond_valid)
        if data.text is not None and self.dist.is_main() and cfg.eval.bleu_samples:
            out |= quick_text_metrics(generator, data.text, cfg.eval.bleu_samples, rng, cfg.eval.batch_size)
        if data.condition is not None and data.condition.kind == "source":
            out |= self._reference_match(generator, rng)
        return out

    def _oracle_metrics(self, generator: Generator, rng: torch.Generator) -> dict[str, float]:
        data, n = self.data, self.cfg.eval.num_samples
        samples = sample_for_data(
            generator, data, n // self.dist.world, rng, temperature=1.0, batch_size=self.cfg.eval.batch_size
        )
        if data.condition is None:
            total, count = token_nll_sum(data.oracle, samples.tokens)
            hits = 0.0
        else:
            nll, hit = self.condition_scores(samples.tokens, samples.cond, rng)
            total, count, hits = float(nll.sum()), samples.tokens.numel(), float(hit.sum())
        total, count, hits = distributed.all_reduce_sum([total, count, hits], self.dist, self.device)
        out = {"nll_oracle": total / max(count, 1)}
        if data.condition is not None:
            out["cond_acc"] = hits / n
        out["unique_frac"] = unique_fraction(distributed.all_gather_rows(samples.tokens, self.dist).tolist())
        return out

    def _reference_match(self, generator: Generator, rng: torch.Generator) -> dict[str, float]:
        """Exact match and token accuracy of G's outputs for every test source against its
        reference: sampled at temperature 1 and greedy (suffix _greedy); each rank scores its part."""
        part = self.dist.part(len(self.data.test))
        sources, references = self.data.cond_test[part], self.data.test[part]
        out: dict[str, float] = {}
        for temperature, suffix in ((1.0, ""), (0.0, "_greedy")):
            sums = reference_match_sums(
                generator, sources, references, rng, temperature=temperature, batch_size=self.cfg.eval.batch_size
            )
            out |= match_metrics(distributed.all_reduce_sum(sums, self.dist, self.device), suffix)
        return out
