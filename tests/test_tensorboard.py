"""TensorBoard logging: every metric of metrics.jsonl, the config once, the same after a resume."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest

from seqgan.config import ConfigError, load_config
from seqgan.metrics.logger import read_metrics
from seqgan.metrics.tensorboard import TensorBoardLog, flat_hparams, read_scalars, scalars
from seqgan.training.run import Trainer

ROOT = Path(__file__).resolve().parents[1]


def expected_series(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """What TensorBoard must hold, written out independently of `scalars`."""
    out: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        for key, value in r.items():
            if key in ("phase", "epoch", "g_epoch", "wall_s", "time"):  # the clock is TensorBoard's own
                continue
            tag, step = (f"d_pretrain/{key}", r["epoch"]) if r["phase"] == "d_pretrain" else (key, r["g_epoch"])
            out.setdefault(tag, []).append((step, value))
    return out


def assert_mirrors(run) -> None:
    got = read_scalars(run / "tensorboard")
    want = expected_series(read_metrics(run / "metrics.jsonl"))
    assert got.keys() == want.keys()
    for tag in want:
        assert [s for s, _ in got[tag]] == [s for s, _ in want[tag]], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in want[tag]], rel=1e-6), tag  # stored as float32


def test_scalars_by_hand():
    row = {"phase": "adversarial", "epoch": 3, "g_epoch": 13, "nll_oracle": 9.5, "d_acc": 0.5}
    assert scalars(row) == [("nll_oracle", 9.5, 13), ("d_acc", 0.5, 13)]
    row = {"phase": "d_pretrain", "epoch": 2, "g_epoch": 10, "d_loss": 0.25}
    assert scalars(row) == [("d_pretrain/d_loss", 0.25, 2)]
    flat = flat_hparams({"seed": 1, "data": {"oracle": None, "sizes": [1, 2]}})
    assert flat == {"seed": 1, "data.oracle": "None", "data.sizes": "[1, 2]"}


def test_every_metric_and_the_config_reach_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config(ROOT / "configs/smoke.yaml", ["eval.tensorboard=true", "adversarial.epochs=2"])
    run = tmp_path / "run"
    trainer = Trainer(cfg, run, quiet=True)
    trainer.start(["seqgan"])
    trainer.run()
    trainer.folder.log.tensorboard.close()
    phases = {r["phase"] for r in read_metrics(run / "metrics.jsonl")}
    assert phases == {"mle", "d_pretrain", "adversarial"}
    assert_mirrors(run)
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    text = acc.Tensors("config/text_summary")
    assert len(text) == 1 and b"rollout_num: 4" in text[0].tensor_proto.string_val[0]
    hparams = [p for p in (run / "tensorboard").rglob("events.*")]
    assert len(hparams) == 2  # the scalars, and the hyperparameters recorded once


def test_resume_rebuilds_tensorboard_from_the_log(tmp_path):
    """Records written after the checkpoint are dropped from both logs, then written again once."""
    cfg = load_config(ROOT / "configs/smoke.yaml", ["eval.tensorboard=true", "eval.every=1", "checkpoint.every=3"])
    run = tmp_path / "run"
    trainer = Trainer(cfg, run, quiet=True)
    trainer.start(["seqgan"])
    trainer.run()
    trainer.folder.log.tensorboard.close()
    full = read_scalars(run / "tensorboard")
    # Pretend the run died after the last adversarial records: rewind to the checkpoint of adversarial epoch 3.
    (run / "checkpoints" / "latest").write_text("2-adversarial-000003\n")
    resumed = Trainer(load_config(run / "config.yaml"), run, quiet=True)
    resumed.resume()
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 3
    resumed.run()
    resumed.folder.log.tensorboard.close()
    assert_mirrors(run)
    assert read_scalars(run / "tensorboard").keys() == full.keys()
    assert all([s for s, _ in read_scalars(run / "tensorboard")[t]] == [s for s, _ in full[t]] for t in full)


def test_missing_tensorboard_is_a_config_error(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("tensorboard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ConfigError, match=r"pip install 'seqgan\[tensorboard\]'.*eval.tensorboard=false"):
        TensorBoardLog(tmp_path, dict)
