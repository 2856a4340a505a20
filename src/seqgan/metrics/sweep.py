"""Quality against diversity across sampling temperatures (Caccia et al., ICLR 2020).

Comparing a GAN with MLE at one temperature is misleading: a lower temperature buys quality at
the cost of diversity. A sweep measures, for each run and temperature tau:
- oracle runs: quality = NLL-oracle of samples drawn at tau (lower is better; the floor is the
  oracle's entropy rate); diversity / coverage = NLL-test, the generator's NLL of held-out real
  data with its logits divided by tau (lower is better); conditional runs add cond_acc;
- text runs: quality = BLEU-4 of the samples against the test lines (higher is better);
  diversity = Self-BLEU-4 (lower is better); and NLL-test at tau.
A run dominates another where its curve lies closer to the better corner on both axes.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from seqgan.data.dataset import Data  # noqa: E402
from seqgan.data.text import text_units  # noqa: E402
from seqgan.generation import sample_for_data  # noqa: E402
from seqgan.metrics.conditional import oracle_sample_metrics  # noqa: E402
from seqgan.metrics.nll import nll_test  # noqa: E402
from seqgan.metrics.text import bleu, self_bleu  # noqa: E402
from seqgan.metrics.text_eval import sample_units  # noqa: E402
from seqgan.models.generator import Generator  # noqa: E402

FIELDS = "run checkpoint label temperature nll_oracle cond_acc bleu4_test self_bleu4 nll_test num_samples num_test seed".split()


def parse_temperatures(text: str) -> list[float]:
    """'0.5:1.5:0.1' (start:stop:step, both ends included) or '0.7,1.0,1.3' -> temperatures > 0."""
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0:
                raise ValueError
            count = int(round((stop - start) / step)) + 1
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--temperatures {text!r}: use start:stop:step (e.g. 0.5:1.5:0.1) or a list (0.7,1.0,1.3)") from None
    bad = [t for t in values if t <= 0]
    if not values or bad:
        raise ValueError(
            f"--temperatures {text!r}: every temperature must be > 0 (got {bad or 'none'}); 0 would be greedy decoding"
        )
    return values


def sweep_generator(
    generator: Generator, data: Data, temperatures: list[float], num_samples: int, seed: int, batch_size: int, candidates: int
) -> list[dict[str, Any]]:
    """One row per temperature: the generator's quality and diversity measures on its run's `data`
    at that temperature. `candidates`: the conditions condition accuracy picks among (feature vectors)."""
    rows = []
    for tau in temperatures:
        rng = torch.Generator(generator.head.weight.device).manual_seed(seed)
        row: dict[str, Any] = {"temperature": tau}
        if data.oracle is not None:
            samples = sample_for_data(generator, data, num_samples, rng, tau, batch_size)
            pool = data.cond_test
            metrics = oracle_sample_metrics(
                data.oracle, samples.tokens, samples.cond, data.condition, pool, candidates, rng, batch_size
            )
            row |= {k: v for k, v in metrics.items() if k in FIELDS}
        else:
            hyps = sample_units(generator, data.text, num_samples, rng, tau, batch_size)
            refs = [text_units(line, data.text.tokenizer.kind) for line in data.text.test_lines]
            row["bleu4_test"] = bleu(hyps, refs, (4,))[4]
            row["self_bleu4"] = self_bleu(hyps, (4,))[4]
        row |= {
            "nll_test": nll_test(generator, data.test, tau, data.cond_test),
            "num_samples": num_samples,
            "num_test": len(data.test),
            "seed": seed,
        }
        rows.append(row)
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[k for k in FIELDS if any(k in r for r in rows)])
        writer.writeheader()
        writer.writerows(rows)


def plot_sweep(rows: list[dict[str, Any]], path: Path, floor: float | None = None) -> None:
    """One line per run, each point labelled with its temperature. Oracle runs: NLL-oracle (y)
    against NLL-test (x), with the oracle floor; text runs: BLEU-4 (y) against Self-BLEU-4 (x)."""
    text = ["bleu4_test" in r for r in rows]
    if any(text) and not all(text):
        raise ValueError("a sweep plots oracle runs or text runs, not both: sweep them separately")
    x_key, y_key = ("self_bleu4", "bleu4_test") if all(text) else ("nll_test", "nll_oracle")
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for label in dict.fromkeys(r["label"] for r in rows):
        pts = sorted((r for r in rows if r["label"] == label), key=lambda r: r["temperature"])
        xs, ys = [r[x_key] for r in pts], [r[y_key] for r in pts]
        ax.plot(xs, ys, marker="o", markersize=4, label=label)
        for r in pts:
            ax.annotate(f"{r['temperature']:g}", (r[x_key], r[y_key]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if all(text):
        ax.set_xlabel("Self-BLEU-4 (diversity; lower is more diverse)")
        ax.set_ylabel("BLEU-4 against the test lines (quality; higher is better)")
    else:
        if floor is not None:
            ax.axhline(floor, color="gray", linestyle="--", linewidth=1, label=f"oracle floor {floor:.2f}")
        ax.set_xlabel("NLL-test (diversity / coverage; lower is better)")
        ax.set_ylabel("NLL-oracle (quality; lower is better)")
    ax.set_title("Temperature sweep: quality against diversity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
