"""BLEU and Self-BLEU of a text run under Texygen's sample sizes, beside seqgan's own protocol.

Texygen's metric code (utils/metrics/Bleu.py and SelfBleu.py, `get_bleu_fast`, the default)
scores every generated line against only the FIRST 500 test lines, and Self-BLEU over only the
first 500 generated lines (each against the other 499). `seqgan evaluate` uses every test line as
a reference and all N samples for Self-BLEU. More references raise both scores, so the two
protocols do not give comparable numbers; this script computes both on the same samples (the
ones `seqgan evaluate RUN -n N --seed S` draws), so published Texygen rows can be compared with
ours on Texygen's terms. Prints one JSON line per run.

    python bench/texygen_protocol.py runs/coco_seqgan@mle runs/coco_seqgan@2-adversarial-000040 [-n 10000]
"""

from __future__ import annotations

import argparse
import json

import torch

from seqgan.data.text import text_units
from seqgan.metrics.text import bleu, self_bleu
from seqgan.metrics.text_eval import sample_units
from seqgan.training.experiment import open_run

ORDERS = (2, 3, 4, 5)
TEXYGEN_SAMPLE_SIZE = 500  # Bleu.sample_size and SelfBleu.sample_size in Texygen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="DIR or DIR@CHECKPOINT of text runs")
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for spec in args.runs:
        run = open_run(spec)
        text = run.data.text
        if text is None:
            raise SystemExit(f"{spec}: not a text run")
        rng = torch.Generator(run.device).manual_seed(args.seed)
        hyps = sample_units(run.generator, text, args.n, rng, 1.0, run.config.eval.batch_size)
        refs = [text_units(line, text.tokenizer.kind) for line in text.test_lines]
        out = {"run": spec, "num_samples": args.n}
        out |= {f"texygen_bleu{k}": v for k, v in bleu(hyps, refs[:TEXYGEN_SAMPLE_SIZE], ORDERS).items()}
        out |= {f"texygen_self_bleu{k}": v for k, v in self_bleu(hyps[:TEXYGEN_SAMPLE_SIZE], ORDERS).items()}
        out |= {f"bleu{k}_test": v for k, v in bleu(hyps, refs, ORDERS).items()}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
