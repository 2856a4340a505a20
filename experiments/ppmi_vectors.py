"""Word vectors from a run's own training lines, for `data.word_vectors` where no pre-trained
vectors (GloVe) can be downloaded: positive pointwise mutual information of words within a window,
then a truncated SVD (Levy, Goldberg and Dagan 2015: context counts smoothed to the power 0.75,
vectors U_d S_d^(1/2)). Only the lines the config's run trains on are counted (its held-out lines
and test file are not), tokenised by the config's own tokenizer, so every vector is of a token of
the run's vocabulary. Writes GloVe's text format (a token and its numbers per line).

    python experiments/ppmi_vectors.py configs/coco_scratch.yaml runs/coco_ppmi100.txt [--dim 100] [--window 2]

A study tool, not part of the package: vectors from the training lines carry no knowledge from
outside them, unlike the ScratchGAN paper's GloVe (docs/algorithms_relaxed.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from seqgan.config import load_config
from seqgan.data.text import make_text_data


def ppmi_vectors(lines: list[list[int]], vocab_size: int, dim: int, window: int, alpha: float = 0.75) -> torch.Tensor:
    """lines of token ids -> (V, dim) vectors: SVD of the PPMI matrix of (word, context) pairs at
    distance <= window, context counts raised to alpha."""
    counts = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
    for ids in lines:
        t = torch.tensor(ids)
        for k in range(1, window + 1):
            a, b = t[:-k], t[k:]
            counts.index_put_((a, b), torch.ones(len(a), dtype=torch.float64), accumulate=True)
            counts.index_put_((b, a), torch.ones(len(a), dtype=torch.float64), accumulate=True)
    total = counts.sum()
    words = counts.sum(dim=1, keepdim=True) / total  # P(w) (V, 1)
    contexts = counts.sum(dim=0, keepdim=True) ** alpha
    contexts = contexts / contexts.sum()  # P_alpha(c) (1, V)
    with torch.no_grad():
        pmi = torch.log((counts / total) / (words * contexts))
    ppmi = torch.nan_to_num(pmi, nan=0.0, posinf=0.0, neginf=0.0).clamp_min(0.0).float()
    u, s, _ = torch.linalg.svd(ppmi, full_matrices=False)
    return u[:, :dim] * s[:dim].sqrt()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="a text run's config (its data section is read)")
    p.add_argument("out", type=Path, help="the vectors file to write")
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=2)
    args = p.parse_args()
    cfg = load_config(args.config)
    text = make_text_data(cfg.data)
    tokenizer = text.tokenizer
    lines = [tokenizer.encode(line) for line in text.train_lines]
    vectors = ppmi_vectors([ids for ids in lines if len(ids) > 1], tokenizer.vocab_size, args.dim, args.window)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as f:
        for token, row in zip(tokenizer.tokens[4:], vectors[4:].tolist(), strict=True):  # no special tokens
            f.write(token + " " + " ".join(f"{x:.5f}" for x in row) + "\n")
    print(f"{args.out}: {tokenizer.vocab_size - 4} tokens x {args.dim}, from {len(lines):,} training lines")


if __name__ == "__main__":
    main()
