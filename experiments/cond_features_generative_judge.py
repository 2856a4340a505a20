"""Is a weak condition judge what stops SeqGAN on the feature-vector oracle? A control with a strong one.

On 100,000 training sequences the MLE G, used as a Bayes classifier, picks a held-out sequence's
own vector among 4 candidates 0.91 of the time; a GRU matcher trained on the same data 0.60
(`experiments/cond_oracle_judges.py`; the matcher D prefers the own vector to one other 0.73-0.77 of the time).
This runs the adversarial phase of `configs/cond_features_seqgan_classifier.yaml` with D's P(c | y)
replaced by the frozen starting G's posterior over c and `--references` vectors of the training
data (a uniform prior), D(y, c) = P(real | y) x P_G0(c | y) (with `--realness none`: P_G0(c | y)
alone); everything else is the config's
(overrides as for `seqgan train`). With `--judge oracle` the oracle's own posterior P_oracle(c | y)
replaces P_G0 (a ceiling: the best judge there is). Not a feature of the package: D's forward is
replaced in this script only (the package's learnt counterpart is discriminator.condition_judge=generator).

    python experiments/cond_features_generative_judge.py runs/feat_genjudge data.num_train=100000 \
        pretrain.init_from=runs/feat_mle_si_n100000@mle pretrain.epochs=0 d_pretrain.steps=0 \
        adversarial.batch_size=128 adversarial.epochs=40

A study, not a benchmark: its results are in docs/conditional.md (feature vectors: a judge that is a language model).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

from seqgan.config import load_config
from seqgan.models.condition import pick_rows
from seqgan.models.discriminator import real_and_fitting_logits
from seqgan.models.judge import GenerativeJudge
from seqgan.training.run import Trainer

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cond_features_seqgan_classifier.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the run folder to write")
    parser.add_argument("overrides", nargs="*", help="section.key=value settings")
    parser.add_argument("--references", type=int, default=7, help="vectors each c competes with (each costs one G pass)")
    parser.add_argument(
        "--judge",
        choices=("g0", "oracle"),
        default="g0",
        help="whose posterior P(c | y) is: the starting G's, or (a ceiling control) the oracle's own",
    )
    parser.add_argument(
        "--realness", choices=("d", "none"), default="d", help="none: P(real | y) = 1, the reward is P_G0(c | y) alone"
    )
    args = parser.parse_args()
    cfg = load_config(CONFIG, args.overrides)
    if cfg.condition.kind != "features" or cfg.discriminator.condition_join != "classifier":
        raise SystemExit("needs condition.kind=features and discriminator.condition_join=classifier")
    trainer = Trainer(cfg, Path(args.out), quiet=True)
    trainer.start(["experiments/cond_features_generative_judge.py", *sys.argv[1:]])
    if args.judge == "oracle":
        judge = trainer.data.oracle.eval().requires_grad_(False)
    else:
        judge = copy.deepcopy(trainer.generator).eval().requires_grad_(False)  # G at the start of the adversarial phase
    posterior = GenerativeJudge(judge, feature_dim=cfg.condition.feature_dim, num_reference=args.references)
    posterior.set_reference(pick_rows(trainer.data.cond_train, args.references, torch.Generator().manual_seed(cfg.seed + 2)))
    d = trainer.algorithm.discriminator
    realness_and_head = d.realness_and_head

    def forward(tokens: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        logits, _ = realness_and_head(tokens)
        if args.realness == "none":
            logits = torch.stack([torch.full_like(logits[:, 0], -30.0), torch.zeros_like(logits[:, 1])], dim=1)
        with torch.no_grad():  # the frozen judge: log P_judge(c | y) against the references, (B,)
            log_p_cond = posterior.log_prob(tokens, cond)
        return real_and_fitting_logits(logits, log_p_cond)

    d.forward = forward  # the reward and d_cond_acc now use the generative judge
    trainer.run()


if __name__ == "__main__":
    main()
