"""Damaged checkpoints and bad command-line input: one line that names the file or option and the fix.

A resume whose latest checkpoint has a damaged file (truncated, or bytes overwritten) warns, names
the file, and continues from the newest intact checkpoint: the run ends as if nothing happened.
The end-of-MLE checkpoint (`DIR@mle`) survives `checkpoint.keep`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqgan.cli.main import main
from seqgan.metrics.logger import without_clock
from seqgan.training.checkpoint import checkpoint_names, latest_checkpoint, stale_checkpoints, write_manifest

ROOT = Path(__file__).resolve().parents[1]
FILES = ("generator.safetensors", "rollout.safetensors", "discriminator.safetensors", "state.pt", "manifest.json")


def metric_rows(run: Path) -> list[dict]:
    """The run's metrics rows without the clock (when each was written differs between runs)."""
    return without_clock([json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()])


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A smoke run of 4 adversarial epochs, checkpoints every 2 epochs, 3 kept (and the MLE one)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", str(ROOT / "configs/smoke.yaml"), "--out", str(run), "--quiet", "checkpoint.keep=3"]) == 0
    return run


def damage(file: Path, how: str) -> None:
    data = file.read_bytes()
    if how == "truncate":
        file.write_bytes(data[: len(data) // 2])
    else:  # the same length, garbage in the middle: only the manifest's hash can tell
        middle = len(data) // 2
        file.write_bytes(data[:middle] + bytes(range(256))[: len(data) - middle][:64] + data[middle + 64 :])


def test_the_last_mle_checkpoint_is_kept_whatever_checkpoint_keep_says(finished, tmp_path, capsys):
    assert checkpoint_names(finished / "checkpoints") == [
        "0-mle-000004",
        "1-d_pretrain-000002",
        "2-adversarial-000002",
        "2-adversarial-000004",
    ]
    run = tmp_path / "keep1"
    assert main(["train", str(ROOT / "configs/smoke.yaml"), "--out", str(run), "--quiet", "checkpoint.keep=1"]) == 0
    assert checkpoint_names(run / "checkpoints") == ["0-mle-000004", "2-adversarial-000004"]
    code, err = run_cli(capsys, "sample", f"{run}@mle", "-n", "3")
    assert code == 0, err


def test_stale_checkpoints_spare_the_newest_and_the_last_mle_one():
    names = ["0-mle-000002", "0-mle-000004", "1-d_pretrain-000002", "2-adversarial-000002", "2-adversarial-000004"]
    assert stale_checkpoints(names, 2) == ["0-mle-000002", "1-d_pretrain-000002"]
    assert stale_checkpoints(names, 5) == []
    assert stale_checkpoints(names[:2], 1) == ["0-mle-000002"]  # within MLE, the newest is the last MLE one


@pytest.mark.parametrize("how", ["truncate", "garbage"])
@pytest.mark.parametrize("name", FILES)
def test_resume_from_a_damaged_latest_checkpoint_falls_back_to_the_one_before(finished, tmp_path, capsys, name, how):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    latest = latest_checkpoint(run / "checkpoints")
    damage(latest / name, how)
    code, err = run_cli(capsys, "train", "--resume", str(run), "--quiet")
    assert code == 0, err
    previous = run / "checkpoints" / "2-adversarial-000002"
    assert f"warning: {latest}" in err and "damaged" in err and f"resuming from the older checkpoint {previous}" in err
    assert err.count("warning") == 1
    a = load_file(latest_checkpoint(run / "checkpoints") / "generator.safetensors")
    b = load_file(latest_checkpoint(finished / "checkpoints") / "generator.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in b)  # epochs 3-4 again: the same weights
    assert metric_rows(run) == metric_rows(finished)


def test_every_checkpoint_damaged_is_one_clear_error(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    for name in checkpoint_names(run / "checkpoints"):
        damage(run / "checkpoints" / name / "state.pt", "truncate")
    code, err = run_cli(capsys, "train", "--resume", str(run), "--quiet")
    assert code == 2 and "no intact checkpoint" in err and "state.pt" in err and "start the run again" in err
    assert err.count("\n") == 1


def test_sampling_a_damaged_checkpoint_names_the_file_and_the_others(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    damage(latest_checkpoint(run / "checkpoints") / "generator.safetensors", "garbage")
    code, err = run_cli(capsys, "sample", str(run))
    assert code == 2 and "generator.safetensors: damaged" in err and f"{run}@NAME" in err and "2-adversarial-000002" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "RUN", "-n", "0"], "-n 0: give at least 2"),
        (["evaluate", "RUN", "-n", "-5"], "-n -5: give at least 2"),
        (["sample", "RUN", "-n", "0"], "-n 0: give at least 1"),
        (["sweep", "RUN", "-n", "1"], "-n 1: give at least 2"),
    ],
)
def test_a_sample_count_below_the_least_is_one_line_with_status_2(finished, capsys, argv, message):
    code, err = run_cli(capsys, *[str(finished) if a == "RUN" else a for a in argv])
    assert code == 2 and message in err and ", e.g. -n " in err and err.count("\n") == 1


@pytest.mark.parametrize("name", ["generator.safetensors", "discriminator.safetensors"])
def test_evaluating_a_damaged_checkpoint_names_the_file_and_the_way_on(finished, tmp_path, capsys, name):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    damage(latest_checkpoint(run / "checkpoints") / name, "truncate")
    argv = ["evaluate", str(run), "-n", "50"] + (["--discriminator"] if name.startswith("disc") else [])
    code, err = run_cli(capsys, *argv)
    assert code == 2 and f"{name}: damaged" in err and f"{run}@NAME" in err and err.count("\n") == 1
    code, _ = run_cli(capsys, "evaluate", f"{run}@2-adversarial-000002", "-n", "50")  # the way on it names
    assert code == 0


@pytest.mark.parametrize(
    ("setting", "message"),
    [("data.heldout_size=40", "data.heldout_size=40"), ("data.heldout_share=1.0", "data.heldout_share=1.0")],
)
def test_a_held_out_split_that_leaves_no_training_lines_is_one_line_with_status_2(tmp_path, capsys, setting, message):
    corpus = tmp_path / "lines.txt"
    corpus.write_text("".join(f"line {i} of the corpus .\n" for i in range(40)), encoding="utf-8")
    code, err = run_cli(
        capsys,
        "train",
        str(ROOT / "configs/text.yaml"),
        "--out",
        str(tmp_path / "run"),
        "--quiet",
        f"data.train={corpus}",
        setting,
    )
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_a_checkpoint_from_before_manifests_step_counts_and_timings_still_resumes(finished, tmp_path, capsys):
    """Checkpoints of older seqgan lack manifest.json and the state keys added since (begun, steps,
    pending, timings): a resume reads them and goes on; a checkpoint of another format says which."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    newest = latest_checkpoint(run / "checkpoints")
    for folder in (run / "checkpoints").iterdir():
        if folder.is_dir():
            (folder / "manifest.json").unlink()
    state = torch.load(newest / "state.pt", weights_only=True)
    old = {k: v for k, v in state.items() if k not in ("begun", "steps", "pending", "timings")}
    torch.save(old, newest / "state.pt")
    code, err = run_cli(capsys, "train", "--resume", str(run), "--quiet", "adversarial.epochs=6")
    assert code == 0, err
    rows = metric_rows(run)
    assert [r["epoch"] for r in rows if r["phase"] == "adversarial"] == [2, 4, 6]
    newest = latest_checkpoint(run / "checkpoints")
    torch.save(old | {"format_version": 99}, newest / "state.pt")
    write_manifest(newest)  # intact, but of another format
    code, err = run_cli(capsys, "train", "--resume", str(run), "--quiet", "adversarial.epochs=8")
    assert code == 2 and "format version 99, this seqgan reads 1" in err and err.count("\n") == 1
