"""Learning curves from metrics.jsonl: a PNG (one panel per metric, one line per run) and a text table.

The x-axis is G's training epoch (`g_epoch`: MLE epochs, then adversarial ones), as in the
paper's Fig. 2; a dotted line marks where a run's adversarial phase begins.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from seqgan.metrics.logger import read_metrics  # noqa: E402

PANELS = [
    ("nll_oracle", "NLL-oracle (nats/token)"),
    ("nll_test", "NLL-test (nats/token)"),
    ("bleu4_test", "BLEU-4 against the test lines (eval.bleu_samples samples)"),
    ("cond_acc", "condition accuracy"),
    ("exact_match_greedy", "exact match (greedy, test sources)"),
    ("d_acc", "D accuracy"),
    ("d_cond_acc", "D prefers the right condition"),
    ("mean_reward", "mean reward"),
]

TABLE_KEYS = tuple(
    "nll_oracle cond_acc exact_match exact_match_greedy nll_test bleu2_test bleu4_test d_acc d_cond_acc mean_reward mle_loss g_loss d_loss".split()
)


def oracle_floor(run_dir: Path) -> float | None:
    """The oracle's NLL on its own held-out samples, written by `seqgan train` (oracle data only)."""
    path = run_dir / "oracle.json"
    return json.loads(path.read_text(encoding="utf-8"))["oracle_nll_test"] if path.is_file() else None


def oracle_condition_ceiling(run_dir: Path) -> float | None:
    """The conditional oracle's condition accuracy on its own held-out samples (conditional oracle runs only)."""
    path = run_dir / "oracle.json"
    return json.loads(path.read_text(encoding="utf-8")).get("oracle_cond_acc") if path.is_file() else None


def _curve(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["g_epoch"], r[key]) for r in rows if key in r and r["phase"] != "d_pretrain"]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_runs(run_dirs: list[Path], out: Path, labels: list[str] | None = None) -> Path:
    labels = labels or [d.name for d in run_dirs]
    runs = [read_metrics(d / "metrics.jsonl") for d in run_dirs]
    panels = [(k, t) for k, t in PANELS if any(k in r for rows in runs for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    colors = [f"C{i}" for i in range(len(runs))]  # one colour per run in every panel
    floors = {round(f, 2) for f in map(oracle_floor, run_dirs) if f is not None}
    for ax, (key, title) in zip(axes[0], panels, strict=True):
        shown: list[float] = []
        for rows, label, color in zip(runs, labels, colors, strict=True):
            x, y = _curve(rows, key)
            if not x:
                continue
            ax.plot(x, y, marker=".", markersize=3, label=label, color=color)
            # The untrained model at epoch 0 would squeeze the scale: limits follow the rest.
            shown += [v for e, v in zip(x, y, strict=True) if e > 0] or y
            adv = [r["g_epoch"] - r["epoch"] for r in rows if r["phase"] == "adversarial"]
            if adv:
                ax.axvline(min(adv), color=color, linestyle=":", linewidth=1)
        if shown:
            pad = 0.05 * (max(shown) - min(shown) or 1.0)
            ax.set_ylim(min(shown) - pad, max(shown) + pad)
        if key == "nll_oracle" and len(floors) == 1:
            title += f"; oracle floor {floors.pop():.2f}"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("G epoch (MLE, then adversarial)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def curve_table(run_dir: Path) -> str:
    """The learning curve of one run as aligned text: phase, epoch and each metric present."""
    rows = read_metrics(run_dir / "metrics.jsonl")
    keys = [k for k in TABLE_KEYS if any(k in r for r in rows)]
    floor = oracle_floor(run_dir)
    head = [f"oracle's own NLL on the held-out set (the floor): {floor:.4f}"] if floor is not None else []
    ceiling = oracle_condition_ceiling(run_dir)
    head += (
        [f"oracle's own condition accuracy on its held-out samples (the ceiling): {ceiling:.4f}"] if ceiling is not None else []
    )
    widths = {k: max(12, len(k) + 1) for k in keys}
    lines = head + [f"{'phase':<12}{'epoch':>6}" + "".join(f"{k:>{widths[k]}}" for k in keys)]
    for r in rows:
        cells = "".join(f"{r[k]:>{widths[k]}.4f}" if k in r else " " * widths[k] for k in keys)
        lines.append(f"{r['phase']:<12}{r['epoch']:>6}{cells}")
    return "\n".join(lines)
