"""Runs that survive: SIGKILL anywhere and resume bitwise-equal, SIGTERM, errors that speak."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqgan.algorithms import base as base_module
from seqgan.algorithms import gan as gan_module
from seqgan.algorithms import gsgan as gsgan_module
from seqgan.algorithms import seqgan as seqgan_module
from seqgan.algorithms.common import read_logged
from seqgan.cli.main import main
from seqgan.config import load_config
from seqgan.distributed import SINGLE
from seqgan.errors import NonFiniteLossError
from seqgan.metrics.logger import read_metrics, without_clock
from seqgan.training import checkpoint as checkpoint_module
from seqgan.training.checkpoint import CheckpointError, latest_checkpoint, load_state
from seqgan.training.run import Trainer
from seqgan.training.signals import TrainingStopped

ROOT = Path(__file__).resolve().parents[1]
# Epochs of a few tenths of a second, so that kills land inside epochs and inside checkpoint writes;
# eval every 2 epochs and checkpoint every epoch, so resumes also start between evaluations.
SLOW_SMOKE = """
    data.vocab_size=300 data.num_train=2000 pretrain.epochs=6 d_pretrain.steps=4 d_pretrain.num_negatives=600
    adversarial.epochs=6 adversarial.num_negatives=400 adversarial.rollout_num=6 eval.num_samples=1000
    checkpoint.every=1 checkpoint.keep=2
""".split()


def logged(run: Path) -> list[dict]:
    """The run's metrics rows without the time they were written at."""
    return without_clock(read_metrics(run / "metrics.jsonl"))


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "seqgan", "train", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def latest_name(run: Path) -> str:
    try:
        return (run / "checkpoints" / "latest").read_text().strip()
    except OSError:
        return ""


def wait_for_phase(proc: subprocess.Popen, run: Path, phase: str, timeout: float = 120) -> None:
    end = time.time() + timeout
    while phase not in latest_name(run) and proc.poll() is None:
        assert time.time() < end, f"no {phase} checkpoint after {timeout} s"
        time.sleep(0.01)


def assert_same_run(a: Path, b: Path) -> None:
    assert logged(a) == logged(b)
    final_a, final_b = latest_checkpoint(a / "checkpoints"), latest_checkpoint(b / "checkpoints")
    assert final_a.name == final_b.name
    for key in ("generator", "rollout", "discriminator"):
        wa, wb = load_file(final_a / f"{key}.safetensors"), load_file(final_b / f"{key}.safetensors")
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), key
    assert (a / "samples.txt").read_text() == (b / "samples.txt").read_text()


def test_sigkill_in_every_phase_then_resume_equals_uninterrupted(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    proc = start("configs/smoke.yaml", "--out", str(full), "--quiet", *SLOW_SMOKE)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()

    rng = random.Random(0)
    proc = start("configs/smoke.yaml", "--out", str(killed), "--quiet", *SLOW_SMOKE)
    kills = 0
    for phase in ("mle", "d_pretrain", "adversarial"):
        wait_for_phase(proc, killed, phase)
        time.sleep(rng.uniform(0.0, 0.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        proc = start("--resume", str(killed), "--quiet")
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert kills == 3
    assert_same_run(full, killed)


def test_sigterm_checkpoints_and_exits_with_a_message(tmp_path):
    run = tmp_path / "run"
    proc = start("configs/smoke.yaml", "--out", str(run), "--quiet", *SLOW_SMOKE)
    wait_for_phase(proc, run, "mle")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    err = proc.stderr.read()
    assert "stopped by SIGTERM " in err and f"seqgan train --resume {run}" in err and "Traceback" not in err
    stopped_at = latest_name(run)
    proc = start("--resume", str(run), "--quiet")
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert stopped_at and latest_name(run) != stopped_at


def test_sigterm_inside_a_long_unit_stops_within_seconds(tmp_path):
    """D pre-training steps of several seconds (25 passes over 2,256 examples): SIGTERM in the middle
    of one ends the run in a few seconds, at the checkpoint of the step before."""
    run = tmp_path / "run"
    slow = ("d_pretrain.epochs=25", "d_pretrain.num_negatives=2000", "d_pretrain.steps=3", "checkpoint.every=1")
    proc = start("configs/smoke.yaml", "--out", str(run), "--quiet", *slow)
    wait_for_phase(proc, run, "d_pretrain")  # step 1 is done; step 2 takes far longer than the wait below
    time.sleep(1.0)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    waited = time.perf_counter() - sent
    err = proc.stderr.read()
    assert "stopped by SIGTERM during D pre-training step 2 (its work so far is dropped)" in err, err
    assert latest_name(run) == "1-d_pretrain-000001"
    # Seconds depend on the machine's load; compare with how long a unit takes on it right now: the
    # D pre-training step before, from the end-of-MLE checkpoint to its own.
    checkpoints = run / "checkpoints"
    mle_end = max((p for p in checkpoints.iterdir() if p.name.startswith("0-mle")), key=lambda p: p.name)
    unit = (checkpoints / "1-d_pretrain-000001").stat().st_mtime - mle_end.stat().st_mtime
    assert waited < unit / 2, f"SIGTERM took {waited:.1f} s, a D step {unit:.1f} s"


def test_stop_inside_every_phase_then_resume_equals_uninterrupted(tmp_path, monkeypatch):
    """A stop signal in the middle of a unit of each phase (an MLE epoch, a D pre-training step, an
    adversarial epoch), with checkpoint.every=50: the run checkpoints the boundary before the unit,
    and the resumed run is bitwise the same as one never stopped."""
    full = smoke_trainer(tmp_path / "full", "checkpoint.every=50")
    full.run()
    modules = {"mle_epoch": base_module, "discriminator_round": gan_module, "policy_gradient_step": seqgan_module}
    real = {name: getattr(module, name) for name, module in modules.items()}
    calls = {"n": 0}
    stop_at = {"mle_epoch": 2, "discriminator_round": 2, "policy_gradient_step": 1}  # the first unit of a phase too

    def signal_midway(name: str):
        def unit(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == stop_at[name]:  # inside a unit that has begun
                os.kill(os.getpid(), signal.SIGTERM)
            return real[name](*args, **kwargs)

        return unit

    run = tmp_path / "stopped"
    trainer = smoke_trainer(run, "checkpoint.every=50")
    stops = []
    for name in real:
        calls["n"] = 0
        monkeypatch.setattr(modules[name], name, signal_midway(name))
        with pytest.raises(TrainingStopped, match="during") as stopped:
            trainer.run()
        stops.append(latest_name(run))
        monkeypatch.setattr(modules[name], name, real[name])
        assert stopped.value.signum == signal.SIGTERM
        trainer = Trainer(trainer.cfg, run, quiet=True)
        trainer.resume()
    trainer.run()
    assert stops == ["0-mle-000001", "1-d_pretrain-000001", "2-adversarial-000000"], stops
    assert_same_run(tmp_path / "full", run)


def smoke_trainer(run: Path, *overrides: str) -> Trainer:
    trainer = Trainer(load_config(ROOT / "configs" / "smoke.yaml", list(overrides)), run, quiet=True)
    trainer.start(["test"])
    return trainer


def test_non_finite_loss_stops_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = seqgan_module.pg_loss
    monkeypatch.setattr(seqgan_module, "pg_loss", lambda *a, **k: real(*a, **k) * float("nan"))
    trainer = smoke_trainer(tmp_path)
    with pytest.raises(NonFiniteLossError) as err:
        trainer.run()
    message = str(err.value)
    assert "policy-gradient loss is nan in adversarial epoch 1" in message and "G steps so far 32" in message
    assert "1-d_pretrain-000002" in message and latest_checkpoint(tmp_path / "checkpoints").name == "1-d_pretrain-000002"


def test_losses_left_on_the_device_are_read_once_a_unit_and_a_nan_one_stops_training(tmp_path, monkeypatch):
    """GSGAN's steps keep their losses on the device (no host read per step); the unit's end reads
    them all (`read_logged`), averages them, and a NaN D loss stops the run there, naming it."""
    logs = {"d_loss": [torch.tensor(1.0), torch.tensor(3.0)], "beta": [2.0], "mean_reward": [torch.tensor(float("nan"))]}
    assert read_logged(logs, SINGLE, torch.device("cpu"))["d_loss"] == [1.0, 3.0]  # only a loss must be finite
    with pytest.raises(NonFiniteLossError, match="the d_loss of step 2 is nan"):
        read_logged({"d_loss": [torch.tensor(1.0), torch.tensor(float("nan"))]}, SINGLE, torch.device("cpu"))
    real = gsgan_module.gan_losses
    monkeypatch.setattr(gsgan_module, "gan_losses", lambda *a: (real(*a)[0] * float("nan"), real(*a)[1]))
    trainer = Trainer(load_config(ROOT / "configs" / "smoke_gsgan.yaml"), tmp_path, quiet=True)
    trainer.start(["test"])
    with pytest.raises(NonFiniteLossError, match="the d_loss of step 1 is nan in adversarial epoch 1 "):
        trainer.run()
    assert latest_checkpoint(tmp_path / "checkpoints").name.startswith("0-mle")


def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    trainer = smoke_trainer(tmp_path)
    trainer.checkpoint()
    good = latest_checkpoint(tmp_path / "checkpoints")
    trainer.epoch += 1

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module.torch, "save", full_disk)
    with pytest.raises(CheckpointError, match=f"No space left on device.*the previous checkpoint {good} is intact"):
        trainer.checkpoint()
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path / "checkpoints") == good
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    resumed = Trainer(trainer.cfg, tmp_path, quiet=True)
    resumed.resume()  # the surviving checkpoint still loads
    assert resumed.epoch == 0


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_checkpoint_errors_are_one_line_with_status_2(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "configs/smoke.yaml", "--out", str(run), "--quiet", "adversarial.epochs=2")[0] == 0

    cfg_text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(cfg_text.replace("hidden_dim: 16", "hidden_dim: 24", 2))
    code, err = run_cli(capsys, "train", "--resume", str(run))
    assert code == 2 and "does not match the model in the config" in err and "checkpoint (64,) vs config (96,)" in err
    assert err.count("\n") == 1
    (run / "config.yaml").write_text(cfg_text.replace("g_lr: 0.01", "g_lr: 0.02"))  # the optimizer state holds 0.01
    code, err = run_cli(capsys, "train", "--resume", str(run))
    assert code == 2 and "its optimizer ran with adversarial.g_lr=0.01, the config says 0.02" in err
    (run / "config.yaml").write_text(cfg_text)

    latest = latest_checkpoint(run / "checkpoints")
    (latest / "generator.safetensors").write_bytes(b"not a safetensors file")
    code, err = run_cli(capsys, "sample", str(run))
    assert code == 2 and "generator.safetensors: damaged" in err and err.count("\n") == 1

    (run / "checkpoints" / "latest").unlink()
    code, err = run_cli(capsys, "evaluate", str(run))
    assert code == 2 and "no checkpoint found" in err

    code, err = run_cli(capsys, "train", "--resume", str(tmp_path / "nowhere"))
    assert code == 2 and "not a run directory" in err
    code, err = run_cli(capsys, "train", "configs/smoke.yaml", "--out", str(run))
    assert code == 2 and f"continue it with --resume {run}" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a visible GPU")
def test_device_cuda_without_a_gpu_is_a_one_line_error_before_any_folder(tmp_path, capsys):
    code, err = run_cli(capsys, "train", "configs/smoke.yaml", "--out", str(tmp_path / "run"), "--quiet", "device=cuda")
    assert code == 2 and "device=cuda but no CUDA device is visible here" in err and "use device=cpu or device=auto" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_truncated_last_metrics_line_is_ignored_on_resume(tmp_path):
    trainer = smoke_trainer(tmp_path)
    trainer.run()
    log = tmp_path / "metrics.jsonl"
    complete = log.read_text()
    log.write_text(complete + '{"phase": "adversarial", "epo')  # a crash in the middle of a write
    resumed = Trainer(trainer.cfg, tmp_path, quiet=True)
    resumed.resume()
    assert log.read_text() == complete


def test_resume_lengthens_a_finished_run_as_if_it_had_been_given_that_length(tmp_path, capsys):
    """`train --resume DIR adversarial.epochs=N` runs on from the final checkpoint: the same
    weights and final metrics as one run of N epochs; the config and command record the change;
    the phase's time in timings.json counts both parts (checkpoints keep the running phase's)."""
    short, full = tmp_path / "short", tmp_path / "full"
    for run, epochs in ((full, 4), (short, 2)):
        assert (
            run_cli(capsys, "train", "configs/smoke.yaml", "--out", str(run), "--quiet", f"adversarial.epochs={epochs}")[0] == 0
        )
    spent = json.loads((short / "timings.json").read_text())["adversarial"]
    saved = load_state(latest_checkpoint(short / "checkpoints"))["timings"]  # written inside the phase, at its last epoch
    assert 0 < saved["adversarial"] <= spent
    assert run_cli(capsys, "train", "--resume", str(short), "adversarial.epochs=4", "--quiet")[0] == 0
    assert json.loads((short / "timings.json").read_text())["adversarial"] > saved["adversarial"]  # both parts counted
    last = [logged(r)[-1] for r in (short, full)]
    assert last[0] == last[1] and last[0]["phase"] == "adversarial" and last[0]["epoch"] == 4
    clock = [r["wall_s"] for r in read_metrics(short / "metrics.jsonl")]
    assert clock == sorted(clock) and clock[-1] > sum(saved.values())  # the resumed rows go on from the checkpoint's time
    for name in ("generator", "discriminator"):
        a, b = (load_file(latest_checkpoint(r / "checkpoints") / f"{name}.safetensors") for r in (short, full))
        assert all(torch.equal(a[k], b[k]) for k in b)
    assert load_config(short / "config.yaml").adversarial.epochs == 4
    assert (
        (short / "command.txt").read_text().splitlines()[-1].endswith("--resume " + str(short) + " adversarial.epochs=4 --quiet")
    )

    code, err = run_cli(capsys, "train", "--resume", str(short), "adversarial.epochs=3")
    assert code == 2 and "has already run 4 adversarial epochs; give at least that many" in err
    assert load_config(short / "config.yaml").adversarial.epochs == 4  # a refused resume leaves the record alone
    code, err = run_cli(capsys, "train", "--resume", str(short), "generator.hidden_dim=8")
    assert code == 2 and "so generator.hidden_dim cannot change; only adversarial.epochs" in err
    code, err = run_cli(capsys, "train", "--resume", str(short), "configs/smoke.yaml")
    assert code == 2 and "give no CONFIG or --out" in err
    # CUDA graphs may go off on resume (tests/test_cuda.py: a graphed run goes on eagerly); none run on the CPU
    assert run_cli(capsys, "train", "--resume", str(short), "cuda_graphs=false", "--quiet")[0] == 0
    assert load_config(short / "config.yaml").cuda_graphs is False and logged(short)[-1] == last[1]
