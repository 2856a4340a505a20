"""The progress bar inside a long unit counts optimizer steps: `unit_steps` must be the count a unit takes."""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path

import pytest
from tqdm import tqdm

from seqgan.config import load_config
from seqgan.training import progress
from seqgan.training.run import VIEWS, Trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "overrides", [[], ["algorithm=mle", "pretrain.epochs=2"], ["adversarial.g_steps=2", "adversarial.d_steps=2"]]
)
def test_unit_steps_is_the_number_of_optimizer_steps_of_each_unit(tmp_path, overrides):
    if "algorithm=mle" in overrides:  # the MLE baseline reads no D or adversarial section
        cfg = load_config(None, ["data.vocab_size=50", "data.num_train=256", "pretrain.batch_size=32", *overrides])
    else:
        cfg = load_config(ROOT / "configs" / "smoke.yaml", overrides)
    trainer = Trainer(cfg, tmp_path, quiet=True)
    trainer.start(["test"])
    algorithm, seen = trainer.algorithm, []
    real_unit = algorithm.train_unit

    def counted(phase: str):
        steps = [0]
        hooks = [
            o.optimizer.register_step_post_hook(lambda *_: steps.__setitem__(0, steps[0] + 1))
            for o in algorithm.optimizers.values()
        ]
        logs = real_unit(phase)
        for hook in hooks:
            hook.remove()
        seen.append((phase, steps[0], algorithm.unit_steps(phase)))
        return logs

    algorithm.train_unit = counted
    trainer.run()
    assert seen and all(taken == expected > 0 for _, taken, expected in seen), seen


def test_bars_show_on_a_terminal_only_and_never_when_quiet(monkeypatch):
    tty = io.StringIO()
    tty.isatty = lambda: True
    monkeypatch.setattr(progress.sys, "stderr", tty)
    assert progress.shown(quiet=False) and not progress.shown(quiet=True)
    monkeypatch.setattr(progress.sys, "stderr", io.StringIO())
    assert not progress.shown(quiet=False)


def test_a_terminal_sees_every_phase_and_each_units_steps_with_an_estimate_of_the_end(tmp_path, monkeypatch):
    tty = io.StringIO()
    tty.isatty = lambda: True
    monkeypatch.setattr(progress.sys, "stderr", tty)
    monkeypatch.setattr(progress, "tqdm", functools.partial(tqdm, mininterval=0))  # redraw at every step: tiny steps
    cfg = load_config(ROOT / "configs" / "smoke.yaml", ["adversarial.epochs=2", "d_pretrain.steps=2", "pretrain.epochs=2"])
    trainer = Trainer(cfg, tmp_path)
    trainer.start(["test"])
    trainer.run()
    shown = tty.getvalue()
    for unit in ("D pre-training step 1", "D pre-training step 2", "epoch 1", "epoch 2"):  # the inner bars
        assert re.search(rf"  {unit}: +\d+%.*\d+/\d+ \[\d\d:\d\d<\d\d:\d\d", shown), unit  # elapsed<remaining
    titles = {VIEWS[phase].title for phase in ("mle", "d_pretrain", "adversarial")}
    assert all(re.search(rf"{re.escape(title)}: 100%.*2/2 \[", shown) for title in titles), titles
