"""The SeqGAN paper's poem experiment (Table 2): BLEU-2..4, Self-BLEU-2..4 and the quatrain form
share of runs on ../shared/data/poems/shi.txt, at several temperatures, beside human poems.

For each run (DIR or DIR@CHECKPOINT; e.g. runs/poems_seqgan@mle and runs/poems_seqgan) and each
temperature, `-n` samples are drawn with `--seed` and scored against the run's own held-out poems
(its seeded split, never trained on) as BLEU references; Self-BLEU reads the same samples; the form
share is `seqgan.metrics.poetry.quatrain_share`. The human row scores `-n` training poems the same
way: it is what a perfect G would reach under this reference set, and calibrates the BLEU scale
(BLEU grows with the number of references: the paper's human row, 0.746, matches about 5,000
references here; `--reference-sizes` prints human BLEU-2 for several sizes).
Prints one JSON line per (run, temperature), then the human rows.

    python experiments/poems.py runs/poems_seqgan@mle runs/poems_seqgan [-n 2000] [--temperatures 0.8,0.9,1.0,1.1]

A study, not a benchmark: its results are in docs/poems.md.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch

from seqgan.data.text import text_units
from seqgan.metrics.poetry import quatrain_share
from seqgan.metrics.text import bleu, self_bleu
from seqgan.metrics.text_eval import sample_units
from seqgan.training.experiment import open_run

ORDERS = (2, 3, 4)
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "poems" / "shi.txt"


def scores(hyps: list[list[str]], refs: list[list[str]]) -> dict[str, float]:
    out = {f"bleu{k}": round(v, 4) for k, v in bleu(hyps, refs, ORDERS).items()}
    out |= {f"self_bleu{k}": round(v, 4) for k, v in self_bleu(hyps, ORDERS).items()}
    return out | {"form": round(quatrain_share(hyps), 4), "unique": round(len({tuple(h) for h in hyps}) / len(hyps), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="DIR or DIR@CHECKPOINT of poem runs")
    parser.add_argument("-n", type=int, default=2000, help="samples per (run, temperature)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperatures", default="1.0", help="comma list (default 1.0)")
    parser.add_argument("--reference-sizes", default="", help="comma list: human BLEU-2 against that many corpus poems")
    args = parser.parse_args()
    refs = None
    for spec in args.runs:
        run = open_run(spec)
        text = run.data.text
        kind = text.tokenizer.kind
        refs = [text_units(line, kind) for line in text.test_lines]
        for temperature in (float(t) for t in args.temperatures.split(",")):
            rng = torch.Generator(run.device).manual_seed(args.seed)
            with torch.no_grad():
                hyps = sample_units(
                    run.generator, text, args.n, rng, temperature=temperature, batch_size=run.config.eval.batch_size
                )
            print(
                json.dumps({"run": spec, "temperature": temperature, "n": args.n, "references": len(refs), **scores(hyps, refs)})
            )
        human = [text_units(line, kind) for line in random.Random(args.seed).sample(text.train_lines, args.n)]
    print(json.dumps({"run": "human (training poems)", "n": args.n, "references": len(refs), **scores(human, refs)}))
    if args.reference_sizes:
        poems = [line.split() for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
        random.Random(args.seed).shuffle(poems)
        hyps, pool = poems[: args.n], poems[args.n :]
        for size in (int(s) for s in args.reference_sizes.split(",")):
            print(json.dumps({"human_vs_references": size, "bleu2": round(bleu(hyps, pool[:size], (2,))[2], 4)}))


if __name__ == "__main__":
    main()
