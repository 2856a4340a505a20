"""The family's oracle results from experiments/oracle_family.sh's sweeps: the table at T = 1, the
gap to MLE's curve at equal NLL-test, and one plot with a panel per seed.

    python experiments/family_table.py runs/family [--reference "MLE 10 epochs (the GANs' start)"]
        [--plot docs/img/oracle_family_sweep.png] [--sweep sweep_relaxed]

(`--sweep sweep_relaxed` reads experiments/oracle_relaxed.sh's sweeps instead. A run missing from
a seed's sweep is shown as "not run" for that seed.)

The gap: a GAN's point at temperature T lies on MLE's curve, above it or below it. MLE's curve is
its sweep's points with temperature at or below the one of its lowest NLL-test (the branch where a
lower temperature trades coverage for quality), joined by straight lines; the gap is the GAN's
NLL-oracle minus MLE's at the GAN's NLL-test (negative: the GAN's samples are better than MLE's at
the same coverage). A point whose NLL-test is lower than every point of that branch has no gap
("left of MLE": it is better on coverage than MLE at any temperature swept). Points of a GAN
above the temperature of its own lowest NLL-test are dominated by its own lower temperatures and
shown as "-".

A study, not a benchmark: its results are in docs/algorithms.md.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Point = tuple[float, float, float]  # (temperature, nll_test, nll_oracle)


def read_sweep(path: Path) -> dict[str, list[Point]]:
    """sweep.csv -> {label: [(temperature, nll_test, nll_oracle), ...] in temperature order}."""
    curves: dict[str, list[Point]] = defaultdict(list)
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            curves[row["label"]].append((float(row["temperature"]), float(row["nll_test"]), float(row["nll_oracle"])))
    return {label: sorted(points) for label, points in curves.items()}


def trade_branch(points: list[Point]) -> list[Point]:
    """The points at or below the temperature of the lowest NLL-test, ordered by NLL-test."""
    t_best = min(points, key=lambda p: p[1])[0]
    return sorted((p for p in points if p[0] <= t_best), key=lambda p: p[1])


def oracle_at(branch: list[Point], nll_test: float) -> float | None:
    """MLE's NLL-oracle at `nll_test` on its branch, linearly interpolated (extrapolated past the
    lowest temperature from its last segment); None left of the branch's lowest NLL-test."""
    if nll_test < branch[0][1]:
        return None
    for (_, x0, y0), (_, x1, y1) in zip(branch, branch[1:], strict=False):
        if x0 <= nll_test <= x1:
            return y0 + (y1 - y0) * (nll_test - x0) / (x1 - x0)
    if len(branch) < 2:
        return None
    (_, x0, y0), (_, x1, y1) = branch[-2:]
    return y1 + (y1 - y0) * (nll_test - x1) / (x1 - x0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="experiments/oracle_family.sh's OUT (seed*/sweep/sweep.csv)")
    parser.add_argument("--reference", default="MLE 10 epochs (the GANs' start)", help="the MLE curve's label")
    parser.add_argument("--plot", type=Path, default=None, help="write the plot here (one panel per seed)")
    parser.add_argument("--sweep", default="sweep", help="the sweep folder in each seed's folder (default: sweep)")
    args = parser.parse_args()
    paths = sorted(args.root.glob(f"seed*/{args.sweep}/sweep.csv"))
    seeds = {p.parent.parent.name: read_sweep(p) for p in paths}
    if not seeds:
        raise SystemExit(f"no seed*/{args.sweep}/sweep.csv under {args.root}: run the experiment's script first")
    labels = list(dict.fromkeys(label for curves in seeds.values() for label in curves))

    print("At T = 1 (NLL-oracle / NLL-test per seed; mean of NLL-oracle)")
    print("| run | " + " | ".join(seeds) + " | mean NLL-oracle |")
    print("| --- |" + " --- |" * (len(seeds) + 1))
    for label in labels:
        at_one = [next((p for p in curves.get(label, []) if abs(p[0] - 1) < 1e-9), None) for curves in seeds.values()]
        cells = ["not run" if p is None else f"{p[2]:.3f} / {p[1]:.3f}" for p in at_one]
        mean = statistics.mean(p[2] for p in at_one if p is not None)
        print(f"| {label} | " + " | ".join(cells) + f" | {mean:.3f} |")

    print(f"\nNLL-oracle minus {args.reference}'s at equal NLL-test, per temperature (negative: better)")
    temps = [p[0] for p in next(iter(seeds.values()))[args.reference]]
    print("| run | seed | " + " | ".join(f"T = {t:g}" for t in temps) + " |")
    print("| --- | --- |" + " --- |" * len(temps))
    for label in labels:
        if label == args.reference:
            continue
        for seed, curves in seeds.items():
            if label not in curves:
                print(f"| {label} | {seed} | not run |")
                continue
            branch = trade_branch(curves[args.reference])
            own = trade_branch(curves[label])
            cells = []
            for point in curves[label]:
                ref = oracle_at(branch, point[1])
                if point not in own:
                    cells.append("-")
                else:
                    cells.append("left of MLE" if ref is None else f"{point[2] - ref:+.3f}")
            print(f"| {label} | {seed} | " + " | ".join(cells) + " |")

    if args.plot:
        fig, axes = plt.subplots(1, len(seeds), figsize=(6.4 * len(seeds), 5.2), squeeze=False)
        for ax, (seed, curves) in zip(axes[0], seeds.items(), strict=True):
            for label, points in curves.items():
                style = "--" if label.startswith("MLE") or "MLE" in label else "-"
                ax.plot([p[1] for p in points], [p[2] for p in points], style, marker="o", markersize=4, label=label)
                for t, x, y in points:
                    ax.annotate(f"{t:g}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
            ax.set_title(f"the oracle, {seed}: temperatures 0.8-1.2, 10,000 samples each")
            ax.set_xlabel("NLL-test (coverage; lower is better)")
            ax.set_ylabel("NLL-oracle (quality; lower is better)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=100)
        print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
