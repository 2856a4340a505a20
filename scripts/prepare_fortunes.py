"""Turn the fortune files of Debian's `fortunes` package into a labelled corpus of one-line sayings.

A fortune file (strfile's text format) holds entries separated by lines holding only '%'; each
file of `usr/share/games/fortunes/` is a category (computers, zippy, ...). This script keeps the
entries that are one saying of prose and writes JSON Lines {"text": ..., "category": ...}, split
into train / valid / test per category (stratified, seeded), for a label-conditioned SeqGAN:

- one-liner: after dropping a last attribution line ("-- Author"), every line of the entry is
  non-blank and starts at the margin (fortune files wrap long prose at about 72 columns without
  indenting; poems, dialogues, lists, code and ASCII art are indented or hold blank lines), and
  the lines joined with single spaces (all whitespace runs collapsed) have at most --max-words
  words;
- a text kept twice in one category is kept once; a text kept in several categories is dropped
  (its label would be ambiguous);
- categories: those named by --categories, or else every category with at least --min-lines
  one-liners (counted before ambiguous texts go); a named category below --min-lines is an error.

Everything dropped is counted, printed as a table and written to OUT/report.json.
Standard library only; nothing is downloaded. Get the files first (see the README):

    apt-get download fortunes && dpkg-deb -x fortunes_*.deb fortunes-deb
    python scripts/prepare_fortunes.py fortunes-deb/usr/share/games/fortunes --out data/fortunes \
        --categories computers,disclaimer,men-women,zippy
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ATTRIBUTION = re.compile(r"^\s*--\s*\S")  # "\t\t-- Mark Twain": who said it, not part of the saying
SPLITS = ("train", "valid", "test")


class PrepareError(ValueError):
    """Input or settings that cannot give a corpus; the message says what to do."""


@dataclass
class CategoryCounts:
    entries: int = 0
    kept: int = 0
    multi_line: int = 0  # not one paragraph of prose: indented lines or blank lines inside
    too_long: int = 0
    duplicates: int = 0  # the same text earlier in this category
    ambiguous: int = 0  # the same text kept in another category too
    attribution_dropped: int = 0  # kept texts whose "-- Author" line was removed
    splits: dict[str, int] = field(default_factory=dict)


def read_entries(path: Path) -> list[str]:
    """The entries of one fortune file: text between lines holding only '%'."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise PrepareError(
            f"{path}: not UTF-8 ({err.reason} at byte {err.start}); convert it with iconv -f latin1 -t utf-8"
        ) from None
    entries, current = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "%":
            entries.append("\n".join(current))
            current = []
        else:
            current.append(line)
    entries.append("\n".join(current))
    return [e.strip("\n") for e in entries if e.strip()]


def one_liner(entry: str) -> tuple[str | None, bool]:
    """(the saying as one whitespace-normalised line, or None if the entry is not one paragraph of
    prose; whether an attribution line was dropped)."""
    lines = entry.split("\n")
    attributed = len(lines) > 1 and bool(ATTRIBUTION.match(lines[-1]))
    if attributed:
        lines = lines[:-1]
    if not all(line.strip() and not line[0].isspace() for line in lines):
        return None, False
    return " ".join(" ".join(lines).split()), attributed


def category_files(folder: Path) -> dict[str, Path]:
    """Category name -> file: the regular files of the folder, without strfile's `.dat` indexes and
    the `.u8` links (sub-folders such as `off/` are not read)."""
    if not folder.is_dir():
        raise PrepareError(f"{folder}: not a folder; pass the extracted usr/share/games/fortunes folder of the package")
    files = {
        p.name: p
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.is_symlink() and p.suffix != ".dat" and not p.name.startswith(".")
    }
    if not files:
        raise PrepareError(f"{folder}: no fortune files; pass the extracted usr/share/games/fortunes folder of the package")
    return files


def collect(files: dict[str, Path], max_words: int) -> tuple[dict[str, list[str]], dict[str, CategoryCounts]]:
    """Per category, its one-liners of at most `max_words` words (in file order, each text once)."""
    texts: dict[str, list[str]] = {}
    counts: dict[str, CategoryCounts] = {}
    for name, path in files.items():
        c = counts[name] = CategoryCounts()
        seen: set[str] = set()
        kept = texts[name] = []
        for entry in read_entries(path):
            c.entries += 1
            text, attributed = one_liner(entry)
            if text is None:
                c.multi_line += 1
            elif len(text.split()) > max_words:
                c.too_long += 1
            elif text in seen:
                c.duplicates += 1
            else:
                seen.add(text)
                kept.append(text)
                c.attribution_dropped += attributed
    return texts, counts


def choose_categories(texts: dict[str, list[str]], names: list[str] | None, min_lines: int) -> list[str]:
    sizes = {name: len(lines) for name, lines in texts.items()}
    listing = ", ".join(f"{n} ({k})" for n, k in sorted(sizes.items(), key=lambda item: -item[1]))
    if names is None:
        chosen = sorted(n for n, k in sizes.items() if k >= min_lines)
        if len(chosen) < 2:
            raise PrepareError(
                f"fewer than 2 categories have >= {min_lines} one-liners; lower --min-lines. Kept per category: {listing}"
            )
        return chosen
    unknown = [n for n in names if n not in sizes]
    if unknown:
        raise PrepareError(f"--categories: no fortune file {', '.join(unknown)}; one-liners per category: {listing}")
    small = [f"{n} ({sizes[n]})" for n in names if sizes[n] < min_lines]
    if small:
        raise PrepareError(
            f"--categories: {', '.join(small)} have fewer than --min-lines={min_lines} one-liners; drop them or lower --min-lines"
        )
    if len(set(names)) != len(names) or len(names) < 2:
        raise PrepareError(f"--categories {','.join(names)}: name at least 2 different categories")
    return sorted(names)


def drop_ambiguous(texts: dict[str, list[str]], chosen: list[str], counts: dict[str, CategoryCounts]) -> None:
    """Remove texts kept in more than one chosen category, counting them."""
    seen = Counter(t for name in chosen for t in texts[name])
    for name in chosen:
        counts[name].ambiguous = sum(seen[t] > 1 for t in texts[name])
        texts[name] = [t for t in texts[name] if seen[t] == 1]
        counts[name].kept = len(texts[name])


def split(
    texts: dict[str, list[str]], chosen: list[str], valid: float, test: float, seed: int
) -> dict[str, list[dict[str, str]]]:
    """Stratified, seeded split: each category's texts are shuffled by Random(seed) (categories in
    sorted order) and round(valid * n), round(test * n) of them go to valid and test."""
    rng = random.Random(seed)
    out: dict[str, list[dict[str, str]]] = {s: [] for s in SPLITS}
    for name in chosen:
        order = list(range(len(texts[name])))
        rng.shuffle(order)
        n_valid, n_test = round(valid * len(order)), round(test * len(order))
        parts = {"valid": order[:n_valid], "test": order[n_valid : n_valid + n_test], "train": order[n_valid + n_test :]}
        for part, idx in parts.items():
            if not idx and (part != "valid" or valid > 0):
                raise PrepareError(
                    f"category {name}: its {len(order)} one-liners leave the {part} split empty; change --valid/--test"
                )
            out[part] += [{"text": texts[name][i], "category": name} for i in sorted(idx)]  # file order within a split
    return out


def prepare(
    folder: Path,
    out: Path,
    categories: list[str] | None = None,
    max_words: int = 20,
    min_lines: int = 250,
    valid: float = 0.1,
    test: float = 0.15,
    seed: int = 0,
) -> dict:
    """Write OUT/{train,valid,test}.jsonl and OUT/report.json; returns the report."""
    if max_words < 1 or min_lines < 1:
        raise PrepareError("--max-words and --min-lines must be >= 1")
    if not (0 <= valid < 1 and 0 < test < 1 and valid + test < 1):
        raise PrepareError(f"--valid {valid} and --test {test}: fractions with 0 <= valid, 0 < test and valid + test < 1")
    texts, counts = collect(category_files(folder), max_words)
    chosen = choose_categories(texts, categories, min_lines)
    drop_ambiguous(texts, chosen, counts)
    parts = split(texts, chosen, valid, test, seed)
    out.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        if not parts[name]:  # --valid 0: no validation file (nor one left from an earlier run)
            (out / f"{name}.jsonl").unlink(missing_ok=True)
            continue
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in parts[name])
    for name in chosen:
        counts[name].splits = {s: sum(r["category"] == name for r in parts[s]) for s in SPLITS}
    words = [len(r["text"].split()) for s in SPLITS for r in parts[s]]
    report = {
        "source": str(folder),
        "settings": {"max_words": max_words, "min_lines": min_lines, "valid": valid, "test": test, "seed": seed},
        "categories": {name: vars(counts[name]) for name in chosen},
        "lines": {s: len(parts[s]) for s in SPLITS},
        "words": {"mean": round(sum(words) / len(words), 2), "max": max(words)},
        "other_categories": {n: len(texts[n]) for n in sorted(texts) if n not in chosen},
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the extracted usr/share/games/fortunes folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder for train/valid/test.jsonl and report.json")
    parser.add_argument("--categories", help="comma-separated category (file) names; default: all with >= --min-lines")
    parser.add_argument("--max-words", type=int, default=20, help="longest saying kept, in whitespace words (default 20)")
    parser.add_argument("--min-lines", type=int, default=250, help="fewest one-liners a category needs (default 250)")
    parser.add_argument(
        "--valid", type=float, default=0.1, help="fraction of each category for valid.jsonl (default 0.1; 0: none)"
    )
    parser.add_argument("--test", type=float, default=0.15, help="fraction of each category for test.jsonl (default 0.15)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.categories.split(",")] if args.categories else None
    try:
        report = prepare(args.folder, args.out, names, args.max_words, args.min_lines, args.valid, args.test, args.seed)
    except PrepareError as err:
        print(f"prepare_fortunes: error: {err}", file=sys.stderr)
        return 2
    print(format_report(report, args.out))
    return 0


def format_report(report: dict, out: Path) -> str:
    """The counts as a table, one row per kept category."""
    columns = ("entries", "kept", "multi_line", "too_long", "duplicates", "ambiguous")
    head = f"{'category':14s}" + "".join(f"{c:>12s}" for c in (*columns, *SPLITS))
    rows = [
        f"{name:14s}" + "".join(f"{c[k]:>12d}" for k in columns) + "".join(f"{c['splits'][s]:>12d}" for s in SPLITS)
        for name, c in report["categories"].items()
    ]
    lines, words = report["lines"], report["words"]
    total = f"lines: {', '.join(f'{s} {lines[s]}' for s in SPLITS)}; words a line: mean {words['mean']}, max {words['max']}"
    return "\n".join([head, *rows, total, f"wrote {out}/{{{','.join(SPLITS)}}}.jsonl and {out}/report.json"])


if __name__ == "__main__":
    sys.exit(main())
