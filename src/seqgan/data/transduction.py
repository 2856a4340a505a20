"""A synthetic transduction task with one right answer per source, for the seq2seq condition.

Made here (no paper defines it). Symbols are the letters a, b, c, ... (`symbols` of them); a
source x is a uniformly random sequence of them, its length uniform in [min_len, max_len]; its
target is the source reversed with every symbol mapped through a fixed permutation pi drawn from
the seed:

    x = x_1 .. x_S   ->   y = pi(x_S) .. pi(x_1)

so every output of G can be scored exactly against the one right answer (`seqgan.metrics.seq2seq`:
exact match and token accuracy). Both need the whole source: the first target token is the
image of the last source token. Validation and test sources never occur among the training ones,
so the scores measure the learned function, not recall.

    python -m seqgan.data.transduction data/transduction            # the configs' files
    python -m seqgan.data.transduction OUT --symbols 6 --max-len 4 --num-train 2000

writes OUT/train.jsonl, valid.jsonl, test.jsonl ({"source": "c a d", "text": "pi(d) pi(a) pi(c)"}
a line) and task.json (the settings and the permutation).
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path

import torch


def permutation(symbols: int, seed: int) -> list[int]:
    """pi as a list: pi[i] is the image of symbol i; a seeded uniform permutation."""
    return torch.randperm(symbols, generator=torch.Generator().manual_seed(seed)).tolist()


def target_of(source: list[int], pi: list[int]) -> list[int]:
    """The one right answer: the source reversed, each symbol mapped by pi."""
    return [pi[s] for s in reversed(source)]


def draw_sources(
    num: int, symbols: int, min_len: int, max_len: int, generator: torch.Generator, exclude: set[tuple[int, ...]]
) -> list[list[int]]:
    """`num` distinct random sources not in `exclude` (which they are added to)."""
    capacity = sum(symbols**n for n in range(min_len, max_len + 1))
    if num + len(exclude) > 0.9 * capacity:  # drawing nearly every possible source would take very long
        raise ValueError(
            f"{symbols} symbols at lengths {min_len}..{max_len} make {capacity} distinct sources, too few for "
            f"{num + len(exclude)} pairs; use more symbols, longer sources or fewer pairs"
        )
    out = []
    while len(out) < num:
        length = int(torch.randint(min_len, max_len + 1, (1,), generator=generator))
        source = tuple(torch.randint(symbols, (length,), generator=generator).tolist())
        if source not in exclude:
            exclude.add(source)
            out.append(list(source))
    return out


def write_task(
    folder: str | Path,
    *,
    num_train: int = 10_000,
    num_valid: int = 500,
    num_test: int = 1_000,
    symbols: int = 20,
    min_len: int = 5,
    max_len: int = 12,
    seed: int = 0,
) -> dict:
    """Write the task's three JSON Lines files and task.json to `folder`; returns task.json's content."""
    if not 2 <= symbols <= len(string.ascii_lowercase):
        raise ValueError(f"symbols={symbols}: use 2..26 (the letters a..z)")
    if not 1 <= min_len <= max_len:
        raise ValueError(f"lengths {min_len}..{max_len}: need 1 <= min_len <= max_len")
    names = string.ascii_lowercase[:symbols]
    pi = permutation(symbols, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    seen: set[tuple[int, ...]] = set()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, num in (("train", num_train), ("valid", num_valid), ("test", num_test)):
        lines = []
        for source in draw_sources(num, symbols, min_len, max_len, generator, seen):
            pair = {"source": " ".join(names[s] for s in source), "text": " ".join(names[s] for s in target_of(source, pi))}
            lines.append(json.dumps(pair) + "\n")
        (folder / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")
    task = {
        "task": "reverse, then map each symbol by pi",
        "symbols": names,
        "pi": {names[i]: names[p] for i, p in enumerate(pi)},
        "min_len": min_len,
        "max_len": max_len,
        "num_train": num_train,
        "num_valid": num_valid,
        "num_test": num_test,
        "seed": seed,
    }
    (folder / "task.json").write_text(json.dumps(task, indent=1) + "\n", encoding="utf-8")
    return task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqgan.data.transduction", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder for train.jsonl, valid.jsonl, test.jsonl and task.json")
    parser.add_argument("--num-train", type=int, default=10_000)
    parser.add_argument("--num-valid", type=int, default=500)
    parser.add_argument("--num-test", type=int, default=1_000)
    parser.add_argument("--symbols", type=int, default=20, help="alphabet size, 2..26 (default 20)")
    parser.add_argument("--min-len", type=int, default=5)
    parser.add_argument("--max-len", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        write_task(
            args.out,
            num_train=args.num_train,
            num_valid=args.num_valid,
            num_test=args.num_test,
            symbols=args.symbols,
            min_len=args.min_len,
            max_len=args.max_len,
            seed=args.seed,
        )
    except ValueError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/train.jsonl, valid.jsonl, test.jsonl, task.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
