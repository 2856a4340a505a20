"""Folk tunes in ABC notation (docs/music.md): BLEU-2/4/6 against held-out tunes, Self-BLEU-2/4/6,
and the two validity measures of seqgan.metrics.music (the share of samples music21 parses as ABC,
the mean share of bars whose duration matches the metre, the share of tunes whose every bar does)
of runs of configs/folk_*.yaml, beside the same measures of real tunes as the ceiling.

For each run (DIR or DIR@CHECKPOINT; e.g. runs/folk_mle runs/folk_seqgan), `-n` samples are drawn
at temperature 1 with `--seed` and scored against the run's test tunes (data/folk/test.txt, never
trained on; character n-grams, spaces ignored). The real rows score `-n` training tunes (seeded)
against the same references, and `-n` test tunes their own Self-BLEU and validity. Prints one JSON line per row and,
with --table, a markdown table. music21 is needed for the parse share: pip install music21.

    python experiments/folk_tunes.py runs/folk_mle runs/folk_seqgan -n 500 --table
"""

from __future__ import annotations

import argparse
import json
import random

import torch

from seqgan.data.text import decode_rows, text_units
from seqgan.metrics.music import abc_parse_share, bar_share, whole_tune_share
from seqgan.metrics.text import bleu, self_bleu
from seqgan.training.experiment import open_run

ORDERS = (2, 4, 6)  # of characters: BLEU-2 of any ABC-like text is near 1 (a 45-character alphabet)
COLUMNS = ("bleu2", "bleu4", "bleu6", "self_bleu2", "self_bleu4", "self_bleu6", "abc_parse", "bar_share", "whole_tunes")


def scores(tunes: list[str], refs: list[list[str]], with_bleu: bool = True) -> dict[str, float]:
    """BLEU (if asked) and Self-BLEU of the tunes' characters, and their validity measures."""
    units = [text_units(t, "char") for t in tunes]
    out = {f"bleu{k}": round(v, 4) for k, v in bleu(units, refs, ORDERS).items()} if with_bleu else {}
    out |= {f"self_bleu{k}": round(v, 4) for k, v in self_bleu(units, ORDERS).items()}
    validity = {"abc_parse": abc_parse_share(tunes), "bar_share": bar_share(tunes), "whole_tunes": whole_tune_share(tunes)}
    return out | {k: round(v, 4) for k, v in validity.items()}


def sample_tunes(spec: str, n: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """(n samples of the run as text lines, spaces kept; its test tunes; its training tunes)."""
    run = open_run(spec)
    text = run.data.text
    rng = torch.Generator(run.device).manual_seed(seed)
    with torch.no_grad():
        rows = run.generator.sample(n, text.train.shape[1], rng, temperature=1.0, batch_size=run.config.eval.batch_size)
    return decode_rows(text.tokenizer, rows), text.test_lines, text.train_lines


def table(rows: list[dict]) -> str:
    head = "| run | " + " | ".join(COLUMNS) + " |"
    lines = [head, "|" + " --- |" * (len(COLUMNS) + 1)]
    lines += ["| " + r["run"] + " | " + " | ".join(f"{r[c]:.3f}" if c in r else "-" for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="DIR or DIR@CHECKPOINT of folk-tune runs")
    parser.add_argument("-n", type=int, default=500, help="samples per run (default 500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table", action="store_true", help="also print a markdown table")
    args = parser.parse_args()
    if args.n < 2:
        parser.error("-n must be at least 2 (Self-BLEU compares samples with each other)")
    rows = []
    for spec in args.runs:
        tunes, test_lines, train_lines = sample_tunes(spec, args.n, args.seed)
        refs = [text_units(line, "char") for line in test_lines]
        rows.append({"run": spec, "n": args.n, "references": len(refs), **scores(tunes, refs)})
        print(json.dumps(rows[-1]))
    real = random.Random(args.seed).sample(train_lines, min(args.n, len(train_lines)))
    rows.append({"run": "real (training tunes)", "n": len(real), "references": len(refs), **scores(real, refs)})
    rows.append({"run": "real (test tunes)", "n": len(real), **scores(test_lines[: len(real)], refs, with_bleu=False)})
    for row in rows[-2:]:
        print(json.dumps(row))
    if args.table:
        print(table(rows))


if __name__ == "__main__":
    main()
