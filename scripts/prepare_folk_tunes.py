"""Turn the Essen folk songs bundled with music21 (ABC notation) into a corpus of one tune a line.

Reads every .abc file of music21's corpus folder `essenFolksong/` (31 files, 8,514 tunes in
music21 10.5.1; nothing is downloaded: `pip install music21` brings them) and writes

    OUT/train.txt, OUT/test.txt   one tune a line: "M:3/4 L:1/8 K:F CCC|F2ACCC|F2A4|..."

What a line keeps and drops:

- kept: the header fields that make the body readable, in this order and compact form: M: (metre),
  L: (unit note length), K: (key); then the body, its lines joined and all spaces removed (in
  Essen's ABC spaces only stand around bar lines; they carry no music).
- line ends: a body line is a phrase, and Essen ends a phrase on a bar line without writing it
  when the phrase fills its last bar. A line end becomes "|" when the notes since the last bar
  line fill exactly one bar of the metre, and disappears otherwise (a phrase that ends inside a
  bar: its pick-up is on the next line). Bar durations are read by `seqgan.metrics.music`.
- dropped fields: X: (number), T: (title), N: (notes, the Essen id), O: (origin), R: (genre),
  S: (source) and % comments.
- dropped tunes: those without a metre of the form n/d (M: none, M: FREI4/4: free rhythm, where
  no bar length can be checked), and exact repeats of a kept line (the test files of the folder
  repeat tunes of the others).

The kept tunes are shuffled with Random(--seed); --test of them go to test.txt (the BLEU
references and NLL-test set of configs/folk_*.yaml), the rest to train.txt. A summary (tunes
read, dropped, kept; length in characters; the share of bars that match the metre) is printed and
written to OUT/report.json.

    pip install music21        # or: pip install -e '.[music]'
    python scripts/prepare_folk_tunes.py --out data/folk
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

from seqgan.metrics.music import BAR_LINE, bar_duration, bar_share, read_tune

FIELD = re.compile(r"^([A-Za-z]):\s*(.*)$")
METRE = re.compile(r"^\d+/\d+$")


class PrepareError(ValueError):
    """Input or settings that cannot give a corpus; the message says what to do."""


def essen_folder() -> Path:
    """music21's folder of Essen folk songs; a clear error when music21 is not installed."""
    try:
        import music21
    except ImportError:
        raise PrepareError("music21 is not installed: pip install music21 (it bundles the Essen folk songs)") from None
    folder = Path(music21.__file__).parent / "corpus" / "essenFolksong"
    if not folder.is_dir():
        raise PrepareError(f"{folder}: not found; this music21 has no bundled corpus (reinstall: pip install music21)")
    return folder


def split_tunes(text: str) -> list[tuple[dict[str, str], list[str]]]:
    """(header fields, body lines) of each tune of an ABC file; a tune starts at an X: line."""
    tunes: list[tuple[dict[str, str], list[str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        field = FIELD.match(line)
        if field and field.group(1) == "X":
            tunes.append(({}, []))
        elif not tunes:
            continue  # text before the first tune
        elif field and not tunes[-1][1]:
            tunes[-1][0].setdefault(field.group(1), field.group(2).strip())
        else:
            tunes[-1][1].append(line.replace(" ", ""))
    return tunes


def join_body(lines: list[str], bar_units: float) -> str:
    """Body lines as one string: a line end becomes '|' when the notes since the last bar line fill
    exactly one bar (`bar_units` units of L), else nothing."""
    body = ""
    for line in lines:
        if body and not body.endswith("|"):
            since_bar = BAR_LINE.split(body)[-1]
            body += "|" if bar_duration(since_bar) == bar_units else ""
        body += line
    return body


def compact(fields: dict[str, str], lines: list[str]) -> str | None:
    """One tune as a line 'M:n/d L:n/d K:key body', or None if it has no metre n/d, unit, key or body."""
    metre, unit, key = (fields.get(f, "").replace(" ", "") for f in "MLK")
    if not (METRE.match(metre) and METRE.match(unit) and key and lines):
        return None
    tune = read_tune(f"M:{metre} L:{unit} K:{key} x")
    if tune is None:
        return None
    return f"M:{metre} L:{unit} K:{key} {join_body(lines, tune.metre / tune.unit)}"


def collect(folder: Path) -> tuple[list[str], dict[str, int]]:
    """The kept tune lines of every .abc file (sorted by name, each line once) and the counts."""
    counts = {"files": 0, "tunes": 0, "no_metre": 0, "duplicates": 0}
    kept: dict[str, None] = {}
    for path in sorted(folder.glob("*.abc")):
        counts["files"] += 1
        for fields, lines in split_tunes(path.read_text(encoding="latin-1")):
            counts["tunes"] += 1
            line = compact(fields, lines)
            if line is None:
                counts["no_metre"] += 1
            elif line in kept:
                counts["duplicates"] += 1
            else:
                kept[line] = None
    return list(kept), counts


def percentile(values: list[int], q: float) -> int:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * q // 100) - 1)] if q < 100 else ordered[-1]


def prepare(out: Path, test: int, seed: int, folder: Path | None = None) -> dict:
    """Write OUT/train.txt, OUT/test.txt and OUT/report.json; returns the report."""
    lines, counts = collect(folder or essen_folder())
    if not 0 < test < len(lines):
        raise PrepareError(f"--test {test}: must be between 1 and {len(lines) - 1} (the {len(lines)} tunes kept)")
    random.Random(seed).shuffle(lines)
    parts = {"test": lines[:test], "train": lines[test:]}
    out.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        (out / f"{name}.txt").write_text("".join(line + "\n" for line in part), encoding="utf-8")
    lengths = [len(line) for line in lines]
    report = {
        **counts,
        "kept": len(lines),
        "train": len(parts["train"]),
        "test": len(parts["test"]),
        "seed": seed,
        "chars": {q: percentile(lengths, p) for q, p in (("median", 50), ("p90", 90), ("p95", 95), ("max", 100))},
        "bar_share": round(bar_share(lines), 4),
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/folk"), help="output folder (default data/folk)")
    parser.add_argument("--test", type=int, default=500, help="tunes held out in test.txt (default 500)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        r = prepare(args.out, args.test, args.seed)
    except PrepareError as err:
        print(f"prepare_folk_tunes: error: {err}", file=sys.stderr)
        return 2
    c = r["chars"]
    print(f"{r['files']} files, {r['tunes']} tunes read; dropped: {r['no_metre']} without a metre n/d, {r['duplicates']} repeats")
    print(f"kept {r['kept']}: train {r['train']}, test {r['test']} (seed {r['seed']})")
    print(f"characters a tune: median {c['median']}, 90th percentile {c['p90']}, 95th {c['p95']}, max {c['max']}")
    print(f"bars that match the metre (mean share a tune): {r['bar_share']:.4f}; wrote {args.out}/{{train,test}}.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
