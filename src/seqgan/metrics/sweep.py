"""Quality against diversity across sampling temperatures (Caccia et al., ICLR 2020) and top-p values.

Comparing a GAN with MLE at one temperature is misleading: a lower temperature buys quality at
the cost of diversity. A sweep measures, for each run and temperature tau:
- oracle runs: quality = NLL-oracle of samples drawn at tau (lower is better; the floor is the
  oracle's entropy rate); diversity / coverage = NLL-test, the generator's NLL of held-out real
  data with its logits divided by tau (lower is better); conditional runs add cond_acc;
- text runs: quality = BLEU-4 of the samples against the test lines (higher is better);
  diversity = Self-BLEU-4 (lower is better); and NLL-test at tau.
A run dominates another where its curve lies closer to the better corner on both axes. With a
second axis of top-p values (nucleus sampling, Holtzman et al., 2020), each (temperature, top-p)
is one row, and each run draws one curve over temperature per top-p value.
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

FIELDS = (
    "run checkpoint label temperature top_p nll_oracle cond_acc bleu4_test self_bleu4 nll_test num_samples num_test seed".split()
)


def parse_temperatures(text: str) -> list[float]:
    """'0.5:1.5:0.1' (start:stop:step, both ends included) or '0.7,1.0,1.3' -> temperatures > 0."""
    values = parse_values(text, "--temperatures", "0.5:1.5:0.1", "0.7,1.0,1.3")
    bad = [t for t in values if t <= 0]
    if not values or bad:
        raise ValueError(
            f"--temperatures {text!r}: every temperature must be > 0 (got {bad or 'none'}); 0 would be greedy decoding"
        )
    return values


def parse_top_ps(text: str) -> list[float]:
    """'0.8:1.0:0.05' or '0.8,0.9,1' -> top-p values in (0, 1]."""
    values = parse_values(text, "--top-p", "0.8:1.0:0.05", "0.8,0.9,1")
    bad = [p for p in values if not 0 < p <= 1]
    if not values or bad:
        raise ValueError(f"--top-p {text!r}: every value must be in (0, 1] (got {bad or 'none'}); 1 keeps every token")
    return values


def parse_values(text: str, flag: str, range_example: str, list_example: str) -> list[float]:
    """'start:stop:step' (both ends included) or a comma list -> the values."""
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0:
                raise ValueError
            count = int(round((stop - start) / step)) + 1
            return [round(start + i * step, 10) for i in range(count)]
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{flag} {text!r}: use start:stop:step (e.g. {range_example}) or a list ({list_example})") from None


def sweep_generator(
    generator: Generator,
    data: Data,
    temperatures: list[float],
    num_samples: int,
    seed: int,
    *,
    batch_size: int,
    candidates: int,
    top_ps: list[float] | None = None,
) -> list[dict[str, Any]]:
    """One row per temperature (and top-p, when `top_ps` is given: a second axis): the generator's
    quality and diversity measures on its run's `data` at that setting. NLL-test depends on the
    temperature only (a truncated distribution gives real tokens outside it probability 0).
    `candidates`: the conditions condition accuracy picks among (feature vectors)."""
    rows = []
    for tau in temperatures:
        nll = nll_test(generator, data.test, tau, data.cond_test)
        for top_p in top_ps or [None]:
            rng = torch.Generator(generator.head.bias.device).manual_seed(seed)
            row: dict[str, Any] = {"temperature": tau} | ({} if top_p is None else {"top_p": top_p})
            row |= _sampled_metrics(
                generator, data, num_samples, rng, tau=tau, top_p=top_p, batch_size=batch_size, candidates=candidates
            )
            row |= {"nll_test": nll, "num_samples": num_samples, "num_test": len(data.test), "seed": seed}
            rows.append(row)
    return rows


def _sampled_metrics(
    generator: Generator,
    data: Data,
    num_samples: int,
    rng: torch.Generator,
    *,
    tau: float,
    top_p: float | None,
    batch_size: int,
    candidates: int,
) -> dict[str, Any]:
    """Quality (and condition accuracy) of `num_samples` samples: NLL-oracle for oracle runs, BLEU-4 and Self-BLEU-4 for text."""
    if data.oracle is not None:
        samples = sample_for_data(generator, data, num_samples, rng, temperature=tau, batch_size=batch_size, top_p=top_p)
        metrics = oracle_sample_metrics(
            data.oracle,
            samples.tokens,
            samples.cond,
            data.condition,
            pool=data.cond_test,
            candidates=candidates,
            rng=rng,
            batch_size=batch_size,
        )
        return {k: v for k, v in metrics.items() if k in FIELDS}
    hyps = sample_units(generator, data.text, num_samples, rng, temperature=tau, batch_size=batch_size, top_p=top_p)
    refs = [text_units(line, data.text.tokenizer.kind) for line in data.text.test_lines]
    return {"bleu4_test": bleu(hyps, refs, (4,))[4], "self_bleu4": self_bleu(hyps, (4,))[4]}


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[k for k in FIELDS if any(k in r for r in rows)])
        writer.writeheader()
        writer.writerows(rows)


def sweep_table(rows: list[dict[str, Any]]) -> str:
    """The sweep as aligned text, one line per (run, top-p, temperature): label and the measured columns."""
    keys = [
        k
        for k in ("label", "temperature", "top_p", "nll_oracle", "nll_test", "cond_acc", "bleu4_test", "self_bleu4")
        if any(k in r for r in rows)
    ]
    cells = [keys] + [[f"{r[k]:.4f}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def sweep_curves(rows: list[dict[str, Any]]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """The lines of a sweep plot: (legend label, the key that varies along the line, its rows in order).

    Per run label: rows without top-p make one line over temperature; rows with top-p make one line
    over temperature per top-p value, or, when they share one temperature, one line over top-p (so a
    temperature sweep and a top-p sweep at T = 1 of the same runs compare on one plane)."""
    curves = []
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        plain = [r for r in mine if r.get("top_p") is None]
        nucleus = [r for r in mine if r.get("top_p") is not None]
        if plain:
            curves.append((label, "temperature", sorted(plain, key=lambda r: r["temperature"])))
        temps = sorted({r["temperature"] for r in nucleus})
        if len(temps) == 1 and len(nucleus) > 1:
            name = f"{label}, top-p at T = {temps[0]:g}"
            curves.append((name, "top_p", sorted(nucleus, key=lambda r: r["top_p"])))
            continue
        for top_p in dict.fromkeys(r["top_p"] for r in nucleus):
            pts = sorted((r for r in nucleus if r["top_p"] == top_p), key=lambda r: r["temperature"])
            curves.append((f"{label}, top-p {top_p:g}", "temperature", pts))
    return curves


def plot_sweep(rows: list[dict[str, Any]], path: Path, floor: float | None = None) -> None:
    """The lines of `sweep_curves`, each point labelled with its temperature (or top-p value, "p0.9").
    Oracle runs: NLL-oracle (y) against NLL-test (x), with the oracle floor; text runs: BLEU-4 (y)
    against Self-BLEU-4 (x)."""
    text = ["bleu4_test" in r for r in rows]
    if any(text) and not all(text):
        raise ValueError("a sweep plots oracle runs or text runs, not both: sweep them separately")
    x_key, y_key = ("self_bleu4", "bleu4_test") if all(text) else ("nll_test", "nll_oracle")
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for name, along, pts in sweep_curves(rows):
        xs, ys = [r[x_key] for r in pts], [r[y_key] for r in pts]
        ax.plot(xs, ys, marker="o" if along == "temperature" else "s", markersize=4, label=name)
        for r in pts:
            tag = f"{r['temperature']:g}" if along == "temperature" else f"p{r['top_p']:g}"
            ax.annotate(tag, (r[x_key], r[y_key]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if all(text):
        ax.set_xlabel("Self-BLEU-4 (diversity; lower is more diverse)")
        ax.set_ylabel("BLEU-4 against the test lines (quality; higher is better)")
    else:
        if floor is not None:
            ax.axhline(floor, color="gray", linestyle="--", linewidth=1, label=f"oracle floor {floor:.2f}")
        ax.set_xlabel("NLL-test (diversity / coverage; lower is better)")
        ax.set_ylabel("NLL-oracle (quality; lower is better)")
    ax.set_title("Decoding sweep: quality against diversity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
