"""How well can a class judge be learnt from a conditional-oracle run's training sequences?

A SeqGAN G with a class-head D cannot become more class-faithful than D's class head is right
(see the README), so this measures the judges that could be learnt from the same data, each on
the run's held-out sequences (condition accuracy of real data; the oracle's own is the ceiling):
- `gru_classifier`: a bidirectional GRU classifier (embedding 32, `--hidden` units per direction,
  dropout) trained with Adam on the run's training sequences, its held-out accuracy after each
  epoch and the best of them;
- `generator_as_classifier`: the run's G (at the checkpoint named) used as a Bayes classifier,
  argmax_c log p_G(y | c) with a uniform prior;
- `oracle`: the oracle's own posterior, argmax_c log p_oracle(y | c).

    python bench/cond_oracle_judges.py runs/cond_cls_rnn_h64_s0@mle --hidden 64 --epochs 20
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from seqgan.metrics.conditional import oracle_condition_scores
from seqgan.training.experiment import open_run


class GRUClassifier(nn.Module):
    def __init__(self, vocab_size: int, hidden: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 32)
        self.rnn = nn.GRU(32, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> class logits (B, K) from the final state of both directions."""
        _, h = self.rnn(self.dropout(self.embedding(tokens)))  # h (2, B, H)
        return self.out(self.dropout(torch.cat([h[0], h[1]], dim=1)))


def bayes_accuracy(model: nn.Module, data) -> float:
    """How often argmax_c log p(y | c) is the true class of a held-out sequence (the score
    `seqgan evaluate` gives G's samples under the oracle, here for real sequences under `model`)."""
    rng = torch.Generator().manual_seed(0)  # unused for labels: every class is a candidate
    hits = oracle_condition_scores(model, data.test, data.cond_test, data.condition, data.cond_test, 1, rng)[1]
    return hits.float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="DIR or DIR@CHECKPOINT of a conditional-oracle run with labels")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    run = open_run(args.run)
    data = run.data
    if data.oracle is None or data.condition is None or data.condition.kind != "label":
        raise SystemExit(f"{args.run}: not a run on the conditional oracle with labels")
    K = data.condition.num_classes[0]
    train, train_c = data.train, data.cond_train[:, 0]
    test, test_c = data.test, data.cond_test[:, 0]
    clf = GRUClassifier(data.vocab_size, args.hidden, K, args.dropout)
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    curve, start = [], time.time()
    for _ in range(args.epochs):
        clf.train()
        for idx in torch.randperm(len(train)).split(64):
            loss = F.cross_entropy(clf(train[idx]), train_c[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        clf.eval()
        with torch.no_grad():
            curve.append(round((clf(test).argmax(dim=1) == test_c).float().mean().item(), 4))
    out = {
        "run": args.run,
        "num_train": len(train),
        "num_test": len(test),
        "gru_classifier": {"hidden": args.hidden, "dropout": args.dropout, "best": max(curve), "per_epoch": curve},
        "generator_as_classifier": round(bayes_accuracy(run.generator.eval(), data), 4),
        "oracle": round(bayes_accuracy(data.oracle, data), 4),
        "seconds": round(time.time() - start),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
