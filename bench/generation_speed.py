"""Benchmark: drawing COCO-sized samples with top-p (nucleus) against plain temperature sampling.

G has the sizes of configs/coco_mle.yaml; its vocabulary and length come from the COCO split at
--data as the config tokenises it (the JSON line reports them). It is timed twice: with its
random initial weights (near-uniform next-token distributions, the nucleus ~90% of the
vocabulary) and after --mle-steps Adam steps of maximum likelihood on the training lines (peaked
distributions, as a trained run's). For each, --num samples (default 10,000) are drawn in
batches of eval.batch_size: plain sampling at --temperature and top-p --top-p at the same
temperature, in turn, --repeats times, keeping the fastest of each. torch runs on one thread on
the CPU. Prints one JSON line with the seconds, the ratio top-p / plain (the target is <= 2) and
the size of the first step's nucleus. Skips (exit 0, a line on stderr) when the data is absent.

    python bench/generation_speed.py [--data ../shared/data/image_coco] [--num 10000] [--top-p 0.9] [--mle-steps 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from seqgan.algorithms.build import make_generator
from seqgan.config import load_config
from seqgan.models.truncation import nucleus_mask
from seqgan.training.experiment import make_data

ROOT = Path(__file__).resolve().parents[1]


def timed_sampling(
    generator, num: int, length: int, batch: int, temperature: float, top_p: float, repeats: int
) -> dict[str, float]:
    """The fastest of --repeats timings of plain and of top-p sampling, taken in turn (other load on
    the machine then slows both alike)."""
    best = {"plain": float("inf"), "top_p": float("inf")}
    for _ in range(repeats):
        for mode, cut in (("plain", None), ("top_p", top_p)):
            rng = torch.Generator().manual_seed(0)
            begin = time.perf_counter()
            generator.sample(num, length, rng, temperature=temperature, batch_size=batch, top_p=cut)
            best[mode] = min(best[mode], time.perf_counter() - begin)
    return best


def train_briefly(generator, train: torch.Tensor, steps: int, batch: int = 64, seed: int = 0) -> None:
    """`steps` Adam steps of the masked teacher-forced NLL on random batches of `train` (R, T)."""
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
    rng = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = train[torch.randint(len(train), (batch,), generator=rng)]
        mask = generator.mask(rows)
        loss = -(generator.log_probs(rows) * mask).sum() / mask.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    generator.eval()


def first_step_nucleus(generator, top_p: float, temperature: float) -> float:
    """Mean size of the top-p nucleus of the first token's distribution (one row: the start state)."""
    start = torch.full((1,), generator.start_token, dtype=torch.long)
    with torch.no_grad():
        logits, _ = generator.step(start, generator.initial_state(None, 1))
    return float(nucleus_mask(torch.softmax(logits / temperature, dim=-1), top_p).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "image_coco"))
    parser.add_argument("--config", default=str(ROOT / "configs" / "coco_mle.yaml"))
    parser.add_argument("--num", type=int, default=10_000)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--mle-steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data_dir = Path(args.data)
    if not (data_dir / "train.txt").is_file():
        print(f"skipped: {data_dir}/train.txt not found (the COCO split lives in ../shared/data/image_coco)", file=sys.stderr)
        return
    torch.set_num_threads(1)
    cfg = load_config(args.config, [f"data.train={data_dir / 'train.txt'}", f"data.test={data_dir / 'test.txt'}"])
    torch.manual_seed(cfg.seed)
    data = make_data(cfg, torch.device("cpu"))
    generator = make_generator(cfg, data).eval()
    result = {"vocab_size": data.vocab_size, "length": data.length, "num": args.num, "batch": cfg.eval.batch_size}
    result |= {"temperature": args.temperature, "top_p": args.top_p, "threads": torch.get_num_threads()}
    for name, steps in (("random_weights", 0), (f"mle_{args.mle_steps}_steps", args.mle_steps)):
        if steps:
            train_briefly(generator, data.train, steps)
        timings = timed_sampling(
            generator, args.num, data.length, cfg.eval.batch_size, args.temperature, args.top_p, args.repeats
        )
        result[name] = {
            "plain_s": round(timings["plain"], 2),
            "top_p_s": round(timings["top_p"], 2),
            "ratio": round(timings["top_p"] / timings["plain"], 2),
            "first_step_nucleus": first_step_nucleus(generator, args.top_p, args.temperature),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
