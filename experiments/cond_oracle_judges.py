"""How well can a condition judge be learnt from a conditional-oracle run's training sequences?

A SeqGAN G with a class-head (or matcher) D cannot become more condition-faithful than D's head
is right (see the README), so this measures the judges that could be learnt from the same data,
each on the run's held-out sequences (condition accuracy of real data, scored as `seqgan
evaluate` scores samples; the oracle's own is the ceiling):
- `gru_classifier` (labels): a bidirectional GRU classifier (embedding 32, `--hidden` units per
  direction, dropout) trained with Adam on the run's training sequences, its held-out accuracy
  after each epoch and the best of them;
- `gru_matcher` (feature vectors): the same GRU reading y, scoring s(y, c) = (W h(y)) . (V c + v)
  as the matcher D does (with `--key-hidden K` the key is V2 tanh(V1 c + v1) + v2, K units),
  trained by InfoNCE over batches of real pairs; held-out accuracy = how
  often the asked-for vector scores strictly highest among `condition.candidates` vectors (the
  others drawn from the held-out vectors, as the metric draws them);
- `generator_as_classifier`: the run's G (at the checkpoint named) used as a Bayes classifier,
  argmax_c log p_G(y | c) with a uniform prior, over the same candidates;
- `generator_tuned` (with `--tune-epochs N`): a copy of that G trained further as a classifier,
  not a language model: for real pairs (y, c) and `--tune-refs` other training vectors r drawn per
  batch, the loss is -log softmax_c'(log p_G(y | c'))[c], c' over c and the r's (a uniform prior);
  its held-out accuracy as for `generator_as_classifier`, after each epoch;
- `d_judge`: for a run with discriminator.condition_judge=generator, its D's judge (at the same
  checkpoint) used the same way;
- `oracle`: the oracle's own posterior, argmax_c log p_oracle(y | c).

    python experiments/cond_oracle_judges.py runs/cond_cls_rnn_h64_s0@mle --hidden 64 --epochs 20
    python experiments/cond_oracle_judges.py runs/feat_mle_si@mle --hidden 64 --epochs 20

A study, not a benchmark: its results are in docs/conditional.md (how well a condition judge can be learnt).
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from seqgan.metrics.conditional import candidate_conditions, oracle_condition_scores
from seqgan.models.condition import condition_matching_loss
from seqgan.models.judge import GenerativeJudge
from seqgan.training.experiment import load_discriminator, open_run


class GRUClassifier(nn.Module):
    """Labels: tokens (B, T) -> class logits (B, out_dim). Feature vectors: the same network's
    output is the query W h(y) of a matcher, and `keys` maps vectors c (B, F) -> (B, out_dim)."""

    def __init__(
        self, vocab_size: int, hidden: int, out_dim: int, dropout: float, feature_dim: int = 0, key_hidden: int = 0
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 32)
        self.rnn = nn.GRU(32, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, out_dim)
        self.keys = None
        if feature_dim and key_hidden:  # a nonlinear key: V2 tanh(V1 c + v1) + v2
            self.keys = nn.Sequential(nn.Linear(feature_dim, key_hidden), nn.Tanh(), nn.Linear(key_hidden, out_dim))
        elif feature_dim:
            self.keys = nn.Linear(feature_dim, out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> (B, out_dim) from the final state of both directions."""
        _, h = self.rnn(self.dropout(self.embedding(tokens)))  # h (2, B, H)
        return self.out(self.dropout(torch.cat([h[0], h[1]], dim=1)))


def bayes_accuracy(model: nn.Module, data, candidates: int) -> float:
    """How often argmax_c log p(y | c) is the asked-for condition of a held-out sequence (the score
    `seqgan evaluate` gives G's samples under the oracle, here for real sequences under `model`)."""
    rng = torch.Generator().manual_seed(0)  # draws the other candidate vectors; unused for labels
    hits = oracle_condition_scores(
        model, data.test, data.cond_test, data.condition, pool=data.cond_test, candidates=candidates, rng=rng
    )[1]
    return hits.float().mean().item()


@torch.no_grad()
def matcher_accuracy(clf: GRUClassifier, data, candidates: int) -> float:
    """Held-out accuracy of a matcher: how often the asked-for vector scores strictly highest
    among the candidates (drawn from the same seed as `bayes_accuracy`'s)."""
    rng = torch.Generator().manual_seed(0)
    options, _ = candidate_conditions(data.condition, data.cond_test, data.cond_test, candidates, rng)
    query = clf(data.test)  # (R, E)
    scores = torch.stack([(query * clf.keys(c)).sum(dim=1) for c in options], dim=1)  # (R, K), target 0
    return (scores[:, 0] > scores[:, 1:].amax(dim=1)).float().mean().item()


def tune_generator(model: nn.Module, data, candidates: int, epochs: int, refs: int, lr: float) -> list[float]:
    """Train `model` (a conditional G, in place) as the package's `GenerativeJudge`: -log P(c | y)
    of each training pair against `refs` vectors drawn afresh for every batch; its held-out Bayes
    accuracy after each epoch."""
    judge = GenerativeJudge(model, feature_dim=data.condition.feature_dim, num_reference=refs)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    curve = []
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(data.train)).split(64):
            judge.set_reference(data.cond_train[torch.randint(len(data.cond_train), (refs,))])  # (R, F)
            loss = -judge.log_prob(data.train[idx], data.cond_train[idx]).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        curve.append(round(bayes_accuracy(model.eval(), data, candidates), 4))
        print(json.dumps({"generator_tuned_epoch": len(curve), "held_out_acc": curve[-1]}), flush=True)
    return curve


def d_judge_accuracy(run, data, candidates: int) -> float | None:
    """The Bayes accuracy of the run's generative judge (None when its D has none)."""
    if run.config.discriminator.condition_judge != "generator":
        return None
    return round(bayes_accuracy(load_discriminator(run).classifier.lm, data, candidates), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="DIR or DIR@CHECKPOINT of a conditional-oracle run (labels or feature vectors)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--key-hidden", type=int, default=0, help="feature vectors: a tanh layer of this width in the key (0: linear)"
    )
    parser.add_argument("--tune-epochs", type=int, default=0, help="also train a copy of G as a classifier this long")
    parser.add_argument("--tune-refs", type=int, default=7, help="other vectors each training pair competes with")
    parser.add_argument("--tune-lr", type=float, default=1e-3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    run = open_run(args.run)
    data = run.data
    if data.oracle is None or data.condition is None:
        raise SystemExit(f"{args.run}: not a run on the conditional oracle")
    labels = data.condition.kind == "label"
    candidates = run.config.condition.candidates
    if labels:
        clf = GRUClassifier(data.vocab_size, args.hidden, data.condition.num_classes[0], args.dropout)
    else:
        clf = GRUClassifier(
            data.vocab_size, args.hidden, 2 * args.hidden, args.dropout, data.condition.feature_dim, args.key_hidden
        )
    start = time.time()
    tuned = None
    if args.tune_epochs:
        if labels:
            raise SystemExit("--tune-epochs is for feature vectors")
        g = copy.deepcopy(run.generator)
        curve = tune_generator(g, data, candidates, args.tune_epochs, args.tune_refs, args.tune_lr)
        tuned = {"refs": args.tune_refs, "lr": args.tune_lr, "best": max(curve), "per_epoch": curve}
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    curve = []
    for _ in range(args.epochs):
        clf.train()
        for idx in torch.randperm(len(data.train)).split(64):
            out = clf(data.train[idx])
            if labels:
                loss = F.cross_entropy(out, data.cond_train[idx, 0])
            else:
                loss = condition_matching_loss(out, clf.keys(data.cond_train[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        clf.eval()
        with torch.no_grad():
            if labels:
                acc = (clf(data.test).argmax(dim=1) == data.cond_test[:, 0]).float().mean().item()
            else:
                acc = matcher_accuracy(clf, data, candidates)
        curve.append(round(acc, 4))
    out = {
        "run": args.run,
        "kind": data.condition.kind,
        "num_train": len(data.train),
        "num_test": len(data.test),
        "gru_classifier" if labels else "gru_matcher": {
            "hidden": args.hidden,
            "key_hidden": args.key_hidden,
            "dropout": args.dropout,
            "best": max(curve, default=None),
            "per_epoch": curve,
        },
        "generator_as_classifier": round(bayes_accuracy(run.generator.eval(), data, candidates), 4),
        "generator_tuned": tuned,
        "d_judge": d_judge_accuracy(run, data, candidates),
        "oracle": round(bayes_accuracy(data.oracle, data, candidates), 4),
        "seconds": round(time.time() - start),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
