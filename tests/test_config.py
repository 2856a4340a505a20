"""Configs: every shipped YAML validates; bad settings fail with messages that say how to fix them."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqgan.config import ConfigError, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    load_config(path)


def test_overrides_are_typed_and_applied():
    cfg = load_config(
        None,
        [
            "adversarial.epochs=7",
            "discriminator.lr=0.001",
            "generator.cell=gru",
            "discriminator.filter_sizes=[1, 2]",
            "discriminator.num_filters=[3, 4]",
        ],
    )
    assert cfg.adversarial.epochs == 7 and cfg.discriminator.lr == 0.001 and cfg.generator.cell == "gru"
    assert cfg.discriminator.filter_sizes == [1, 2]


@pytest.mark.parametrize(
    "override, message",
    [
        ("adversarial.epoch=3", "did you mean 'epochs'"),
        ("advesarial.epochs=3", "did you mean 'adversarial'"),
        ("adversarial.epochs=many", "expected an integer"),
        ("adversarial.rollout_update_rate=1.5", "rollout_update_rate must be in"),
        ("generator.cell=transformer", "use 'lstm', 'gru' or 'rmc'"),
        ("discriminator.rnn_hidden=32", "applies only to kind='rnn'"),
        ("data.seq_len=10", "wider than the sequences"),
        ("data.train=x.txt", "does not apply to data.source=.oracle."),
        ("data.source=text", "data.train: give the training corpus"),
        ("adversarial.epochs", "expected section.key=value"),
        ("eval.bleu_samples=1", r"use 0 \(no text metrics during training\) or >= 2"),
        ("adversarial.baseline=critic", "must be 'none', 'mean' or 'prefix'"),
    ],
)
def test_bad_settings_are_rejected_with_a_fix(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pretrain:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: pretrain.epoch: unknown key 'epoch'; did you mean 'epochs'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
