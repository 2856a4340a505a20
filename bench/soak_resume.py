"""Soak test (a script, not a test): kill a run with SIGKILL at random moments, resume it each time,
and check that it ends exactly like an uninterrupted run with the same seed.

    python bench/soak_resume.py [--kills 5] [--seed 0] [--config configs/smoke.yaml] [override ...]

Prints one JSON line: kills made, where each landed (the checkpoint the resume started from),
seconds, and whether metrics.jsonl, the final weights and samples.txt are identical.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OVERRIDES = """
    data.vocab_size=500 data.num_train=3000 pretrain.epochs=10 d_pretrain.steps=5 d_pretrain.num_negatives=1000
    adversarial.epochs=10 adversarial.num_negatives=600 adversarial.rollout_num=8 eval.num_samples=1000
    checkpoint.every=1 checkpoint.keep=2
""".split()


def train(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "seqgan", "train", *args, "--quiet"], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )


def identical(a: Path, b: Path) -> dict[str, bool]:
    la, lb = (a / "checkpoints" / "latest").read_text(), (b / "checkpoints" / "latest").read_text()
    weights = la == lb
    for key in ("generator", "rollout", "discriminator"):
        wa = load_file(a / "checkpoints" / la.strip() / f"{key}.safetensors")
        wb = load_file(b / "checkpoints" / lb.strip() / f"{key}.safetensors")
        weights &= wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    return {
        "metrics_identical": (a / "metrics.jsonl").read_text() == (b / "metrics.jsonl").read_text(),
        "weights_identical": bool(weights),
        "samples_identical": (a / "samples.txt").read_text() == (b / "samples.txt").read_text(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="configs/smoke.yaml")
    parser.add_argument("overrides", nargs="*", default=DEFAULT_OVERRIDES)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="seqgan-soak-"))
    full, killed = work / "full", work / "killed"

    begin = time.perf_counter()
    proc = train(args.config, "--out", str(full), *args.overrides)
    if proc.wait() != 0:
        sys.exit(f"uninterrupted run failed: {proc.stderr.read()}")
    duration = time.perf_counter() - begin

    # Each kill waits for the run to write 1-6 checkpoints it did not have (so every cycle makes
    # progress and the kills spread over the phases), then lands a random moment later: inside an
    # epoch or inside a checkpoint write.
    latest = killed / "checkpoints" / "latest"
    landed = []
    proc = train(args.config, "--out", str(killed), *args.overrides)
    for _ in range(args.kills):
        for _ in range(rng.randint(1, 6)):
            seen = latest.read_text() if latest.is_file() else ""
            while proc.poll() is None and (not latest.is_file() or latest.read_text() == seen):
                time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        landed.append(latest.read_text().strip())
        proc = train("--resume", str(killed))
    if proc.wait() != 0:
        sys.exit(f"resumed run failed: {proc.stderr.read()}")
    result = {"kills": len(landed), "resumed_from": landed, "uninterrupted_seconds": round(duration, 1), "work_dir": str(work)}
    result |= identical(full, killed)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
