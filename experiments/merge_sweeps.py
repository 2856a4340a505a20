"""Join the sweep.csv files of several `seqgan sweep` calls into one table and one plot.

Each run of a sweep is sampled with its own seeded stream (the --seed of its call), so runs swept
in separate calls with the same seed, -n and temperatures give the numbers one joint call would:
a run trained later can join an earlier sweep without sampling the others again.

    python experiments/merge_sweeps.py runs/a/sweep.csv runs/b/sweep.csv --out runs/joined [--table]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from seqgan.metrics.sweep import plot_sweep, sweep_table, write_csv

TEXT = {"run", "checkpoint", "label"}


def read_rows(path: Path) -> list[dict]:
    """A sweep.csv's rows with their numbers as numbers (empty cells left out)."""
    with path.open(encoding="utf-8") as f:
        return [{k: v if k in TEXT else float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csvs", nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path, help="folder for the joined sweep.csv and sweep.png")
    p.add_argument("--table", action="store_true", help="also print the joined table")
    args = p.parse_args()
    rows = [row for path in args.csvs for row in read_rows(path)]
    seeds = {(r.get("seed"), r.get("num_samples")) for r in rows}
    if len(seeds) > 1:
        raise SystemExit(f"the sweeps differ in seed or samples ({sorted(seeds)}): sweep again with the same --seed and -n")
    write_csv(rows, args.out / "sweep.csv")
    plot_sweep(rows, args.out / "sweep.png")
    if args.table:
        print(sweep_table(rows))
    print(f"wrote {args.out / 'sweep.csv'} and {args.out / 'sweep.png'}")


if __name__ == "__main__":
    main()
