"""BLEU and Self-BLEU of a text run under Texygen's sample sizes, beside seqgan's own protocol.

Texygen's metric code (utils/metrics/Bleu.py and SelfBleu.py, `get_bleu_fast`, the default)
scores every generated line against only the FIRST 500 test lines, and Self-BLEU over only the
first 500 generated lines (each against the other 499). `seqgan evaluate` uses every test line as
a reference and all N samples for Self-BLEU. More references raise both scores, so the two
protocols do not give comparable numbers; this script computes both on the same samples (the
ones `seqgan evaluate RUN -n N --seed S` draws), so published Texygen rows can be compared with
ours on Texygen's terms. Prints one JSON line per run.

    python experiments/texygen_protocol.py runs/coco_seqgan@mle runs/coco_seqgan@2-adversarial-000040 [-n 10000]

`--samples FILE ...` scores sample files made elsewhere (one sample a line, words split on
whitespace; e.g. another toolkit's generated captions) the same two ways against `--test`, so
that the scorer itself can be checked against published figures for those very samples:

    python experiments/texygen_protocol.py --samples texygen_mle.txt --test ../shared/data/image_coco/test.txt --word-split nltk

(`--word-split nltk` splits samples and test lines with NLTK's word tokenizer, as Texygen's
`Bleu` does with `nltk.word_tokenize`; `whitespace`, the default, splits on spaces.)

A study, not a benchmark: its results are in docs/results.md (the scoring protocol, checked on Texygen's own samples).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from seqgan.data.text import text_units
from seqgan.data.tokenizers import SPECIAL_TOKENS, WORD_SPLITS, VocabTokenizer
from seqgan.metrics.text import bleu, self_bleu
from seqgan.metrics.text_eval import sample_units
from seqgan.training.experiment import open_run

ORDERS = (2, 3, 4, 5)
TEXYGEN_SAMPLE_SIZE = 500  # Bleu.sample_size and SelfBleu.sample_size in Texygen


def both_protocols(hyps: list[list[str]], refs: list[list[str]]) -> dict[str, float]:
    """Texygen's fast protocol (500 references, Self-BLEU over 500 samples) and ours (all of both)."""
    out = {f"texygen_bleu{k}": v for k, v in bleu(hyps, refs[:TEXYGEN_SAMPLE_SIZE], ORDERS).items()}
    out |= {f"texygen_self_bleu{k}": v for k, v in self_bleu(hyps[:TEXYGEN_SAMPLE_SIZE], ORDERS).items()}
    out |= {f"bleu{k}_test": v for k, v in bleu(hyps, refs, ORDERS).items()}
    out |= {f"self_bleu{k}": v for k, v in self_bleu(hyps, ORDERS).items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="DIR or DIR@CHECKPOINT of text runs")
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", nargs="+", default=[], help="sample files to score instead of (or beside) runs")
    parser.add_argument("--test", default="../shared/data/image_coco/test.txt", help="reference file for --samples")
    parser.add_argument("--word-split", choices=WORD_SPLITS, default="whitespace", help="how --samples and --test split words")
    args = parser.parse_args()
    if not args.runs and not args.samples:
        parser.error("give text runs, or --samples FILE")
    for spec in args.runs:
        run = open_run(spec)
        text = run.data.text
        if text is None:
            raise SystemExit(f"{spec}: not a text run")
        rng = torch.Generator(run.device).manual_seed(args.seed)
        hyps = sample_units(run.generator, text, args.n, rng, temperature=1.0, batch_size=run.config.eval.batch_size)
        refs = [text_units(line, text.tokenizer.kind) for line in text.test_lines]
        print(json.dumps({"run": spec, "num_samples": args.n} | both_protocols(hyps, refs)), flush=True)
    if args.samples:
        split = VocabTokenizer("word", list(SPECIAL_TOKENS), split_rule=args.word_split).split

        def read(path: str) -> list[list[str]]:
            return [split(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]

        refs = read(args.test)
        for file in args.samples:
            hyps = read(file)
            out = {
                "samples": file,
                "word_split": args.word_split,
                "num_samples": len(hyps),
                "test": args.test,
                "num_test": len(refs),
            }
            print(json.dumps(out | both_protocols(hyps, refs)), flush=True)


if __name__ == "__main__":
    main()
