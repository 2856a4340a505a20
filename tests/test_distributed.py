"""Data-parallel training under torchrun (issue 7): 2 CPU processes (gloo) against one.

What is equal to the single-process run with the same global batch sizes, and how closely:
- the MLE phase: every rank draws the same batch order from the same shuffle stream and the
  gradients of the two halves are averaged, so G follows the same trajectory up to float
  summation order: mle_loss and nll_test agree to a relative 1e-5 (measured: ~1e-7).
- anything that samples from G (nll_oracle, D's negatives, the adversarial batches and their
  rollouts) uses a different stream on rank 1, so from D pre-training on the runs differ
  statistically, never bitwise. On this tiny config, four single-process runs that differ only in
  their sampling streams ended within 0.026 of each other in nll_test and 0.40 in nll_oracle
  (3.82 to 4.23: 4 adversarial epochs of batch 16 move G a lot); the bounds below are a little wider.
A resume under torchrun is exact: each rank's RNG states are in the checkpoint.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqgan.cli.main import main
from seqgan.config import ConfigError, load_config
from seqgan.distributed import Dist, shard
from seqgan.metrics.logger import without_clock
from seqgan.training.run import Trainer, check_divisible

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["configs/smoke.yaml", "--quiet", "checkpoint.keep=10"]
MLE_RTOL = 1e-5
NLL_TEST_ATOL = 0.05  # every nll_test after the MLE phase (statistical, see the docstring)
NLL_ORACLE_ATOL = 0.5  # every nll_oracle: 256 samples, and training streams that differ
D_ACC_ATOL = 0.15


def torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "seqgan", "train", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """The smoke config once in one process and once in two."""
    base = tmp_path_factory.mktemp("ddp")
    single, double = base / "single", base / "double"
    assert main(["train", *ARGS, "--out", str(single)]) == 0
    done = torchrun(*ARGS, "--out", str(double))
    assert done.returncode == 0, done.stderr[-3000:]
    # D's window-major convolution weights and their gradients share DDP's bucket layout (no copies)
    assert "Grad strides do not match bucket view strides" not in done.stderr
    return single, double


def test_two_processes_match_one_within_tolerance(runs):
    single, double = (rows(r) for r in runs)
    assert [(r["phase"], r["epoch"]) for r in single] == [(r["phase"], r["epoch"]) for r in double]
    for a, b in zip(single, double, strict=True):
        if a["phase"] == "mle":
            for key in ("mle_loss", "nll_test"):
                if key in a:
                    assert b[key] == pytest.approx(a[key], rel=MLE_RTOL), (a, b)
        elif "nll_test" in a:
            assert b["nll_test"] == pytest.approx(a["nll_test"], abs=NLL_TEST_ATOL), (a, b)
        if "nll_oracle" in a:
            assert b["nll_oracle"] == pytest.approx(a["nll_oracle"], abs=NLL_ORACLE_ATOL), (a, b)
        if "d_acc" in a:
            assert b["d_acc"] == pytest.approx(a["d_acc"], abs=D_ACC_ATOL), (a, b)


def test_only_rank_0_writes(runs):
    single, double = runs
    assert sorted(p.name for p in double.iterdir()) == sorted(p.name for p in single.iterdir())
    assert len(rows(double)) == len(rows(single))  # no line written twice
    assert len((double / "samples.txt").read_text().splitlines()) == load_config(single / "config.yaml").eval.final_samples
    assert json.loads((double / "timings.json").read_text())["processes"] == 2
    state = torch.load(double / "checkpoints" / "2-adversarial-000004" / "state.pt", weights_only=True)
    assert len(state["rng_ranks"]) == 2


def test_resume_under_torchrun_equals_uninterrupted(runs, tmp_path):
    _, double = runs
    resumed = tmp_path / "resumed"
    shutil.copytree(double, resumed)
    shutil.rmtree(resumed / "checkpoints" / "2-adversarial-000004")
    (resumed / "checkpoints" / "latest").write_text("2-adversarial-000002\n")
    done = torchrun("--resume", str(resumed))
    assert done.returncode == 0, done.stderr[-3000:]
    assert without_clock(rows(resumed)) == without_clock(rows(double))
    final = "checkpoints/2-adversarial-000004/generator.safetensors"
    a, b = load_file(double / final), load_file(resumed / final)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["condition.kind=features", "discriminator.condition_join=classifier"],
        ["condition.kind=features", "discriminator.condition_join=classifier", "discriminator.condition_judge=generator"],
        ["configs/smoke_leakgan.yaml"],
    ],
)
def test_every_rank_ends_with_the_same_weights(tmp_path, overrides):
    """Including a feature-vector matcher D, whose InfoNCE loss reads D's condition encoder outside
    the DDP forward, a generative judge, whose loss reads its LM there, and LeakGAN, whose G (which
    holds D) has its gradients averaged by hand: their gradients must still be averaged over the ranks."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    script = ROOT / "tests" / "scripts" / "ddp_ranks_agree.py"
    done = subprocess.run(
        [*cmd, str(script), str(tmp_path / "run"), *overrides], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_resume_with_another_number_of_processes_is_refused(runs, tmp_path, capsys):
    _, double = runs
    copy = tmp_path / "copy"
    shutil.copytree(double, copy)
    assert main(["train", "--resume", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "written by 2 process(es), resumed with 1" in err and "same number of processes" in err


def test_global_batches_must_split_over_the_processes(tmp_path):
    cfg = load_config(ROOT / "configs/smoke.yaml", ["adversarial.batch_size=15"])
    with pytest.raises(ConfigError, match=r"adversarial.batch_size=15: .* split evenly over the 2 processes"):
        Trainer(cfg, tmp_path, dist=Dist(rank=0, world=2))


def test_only_the_batches_an_algorithm_reads_must_split():
    """scratch has no D pre-training and no MLE: what its (unused) sections hold is no reason to refuse
    its torchrun job; SeqGAN reads both."""
    for config, refused in (("smoke_scratch", False), ("smoke", True)):
        cfg = load_config(ROOT / "configs" / f"{config}.yaml")
        cfg.d_pretrain.num_negatives = cfg.pretrain.batch_size = 15
        if refused:
            with pytest.raises(ConfigError, match=r"^pretrain.batch_size=15, d_pretrain.num_negatives=15: "):
                check_divisible(cfg, 2)
        else:
            check_divisible(cfg, 2)


def test_an_algorithms_own_batches_must_split_too():
    cfg = load_config(ROOT / "configs/smoke_rankgan.yaml", ["rankgan.batch_size=15"])
    with pytest.raises(ConfigError, match=r"^rankgan.batch_size=15: .* split evenly over the 2 processes"):
        check_divisible(cfg, 2)


def test_shards_partition_a_batch_in_rank_order():
    assert [shard(12, r, 3) for r in range(3)] == [slice(0, 4), slice(4, 8), slice(8, 12)]
    assert [Dist(r, 3).part(10) for r in range(3)] == [slice(0, 3), slice(3, 6), slice(6, 10)]
    with pytest.raises(ValueError, match="do not split evenly"):
        shard(10, 0, 3)
