"""Benchmark: corpus reading, word tokenisation and encoding of COCO captions; BLEU and Self-BLEU time.

Measured in one process, torch on one thread (fast-bleu runs its own C++ threads):
- encode_seconds: read train.txt, train the word tokenizer (no size limit) and encode every line
  with max_len (default 40), truncating; also distinct_words (vocabulary minus the 4 specials),
  lines, truncated and longest (in tokens);
- bleu4_seconds / bleu4: BLEU-4 of --num-hyps training lines (seeded pick) against the whole test
  file as the reference set. Training lines rather than test lines, so that no hypothesis is its
  own reference; the time is the same either way;
- self_bleu4_seconds / self_bleu4: Self-BLEU-4 of --num-hyps test lines (seeded pick).
Words are split as configs/coco_*.yaml split them (`--word-split nltk`, NLTK's Treebank word
tokenizer; `whitespace` for plain splitting), for the vocabulary and for BLEU alike. Ends by
printing one JSON line.

    python bench/corpus_speed.py [--data ../shared/data/image_coco] [--max-len 40] [--num-hyps 1000] [--word-split nltk]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from seqgan.data.corpus import encode_corpus, read_corpus
from seqgan.data.tokenizers import SPECIAL_TOKENS, build_tokenizer
from seqgan.metrics.text import bleu, self_bleu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "image_coco"))
    parser.add_argument("--max-len", type=int, default=40)
    parser.add_argument("--num-hyps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--word-split", choices=("nltk", "whitespace"), default="nltk")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = Path(args.data)

    start = time.perf_counter()
    train = read_corpus(data / "train.txt")
    tokenizer = build_tokenizer("word", train.lines, split=args.word_split)
    _, report = encode_corpus(train.lines, tokenizer, args.max_len, overflow="truncate")
    encode_seconds = time.perf_counter() - start

    test = [tokenizer.split(line) for line in read_corpus(data / "test.txt").lines]
    rng = random.Random(args.seed)
    hyps = [tokenizer.split(line) for line in rng.sample(train.lines, args.num_hyps)]
    start = time.perf_counter()
    bleu4 = bleu(hyps, test, orders=(4,))[4]
    bleu_seconds = time.perf_counter() - start

    samples = rng.sample(test, args.num_hyps)
    start = time.perf_counter()
    self_bleu4 = self_bleu(samples, orders=(4,))[4]
    self_bleu_seconds = time.perf_counter() - start

    print(
        json.dumps(
            {
                "word_split": args.word_split,
                "encode_seconds": round(encode_seconds, 3),
                "lines": report["lines"],
                "distinct_words": tokenizer.vocab_size - len(SPECIAL_TOKENS),
                "max_len": args.max_len,
                "truncated": report["truncated"],
                "longest": report["longest"],
                "num_hyps": args.num_hyps,
                "num_refs": len(test),
                "bleu4": round(bleu4, 4),
                "bleu4_seconds": round(bleu_seconds, 3),
                "self_bleu4": round(self_bleu4, 4),
                "self_bleu4_seconds": round(self_bleu_seconds, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
