"""Configs: every shipped YAML validates; bad settings fail with messages that say how to fix them."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqgan.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


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


@pytest.mark.parametrize(("written", "read"), [("on", "on"), ("off", "off"), ("'on'", "on"), ("true", "on"), ("auto", "auto")])
def test_fused_conv_reads_yamls_unquoted_on_and_off(tmp_path, written, read):
    # YAML 1.1 turns unquoted on / off into booleans; the docs' discriminator.fused_conv=on must still work
    assert load_config(None, [f"discriminator.fused_conv={written}"]).discriminator.fused_conv == read
    config = tmp_path / "c.yaml"
    config.write_text(f"algorithm: rankgan\nrankgan:\n  fused_conv: {written}\n")
    assert load_config(config).algo.fused_conv == read


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
        ("discriminator.rnn_cell=yes", "YAML reads unquoted yes, no, on, off as booleans: quote it"),
        ("discriminator.fused_conv=sometimes", "use 'auto', 'on' or 'off'"),
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


def test_run_folders_of_earlier_versions_still_load(tmp_path):
    """Earlier versions saved every field, so an oracle run's config.yaml holds the old text-only
    default data.heldout_size: 1000; it never applied to the oracle and must not now be refused.
    A text run's saved 1000 is the size it used and stays."""
    from seqgan.config import save_config

    saved = tmp_path / "config.yaml"
    save_config(load_config(ROOT / "configs" / "smoke.yaml"), saved)
    text = saved.read_text()
    assert "heldout_size: 0" in text
    saved.write_text(text.replace("heldout_size: 0", "heldout_size: 1000"))
    assert load_config(saved).data.heldout_size == 0
    with pytest.raises(ConfigError, match="heldout_size"):  # a new oracle config that sets it is still told
        load_config(ROOT / "configs" / "smoke.yaml", ["data.heldout_size=500"])
    assert load_config(ROOT / "configs" / "text.yaml", ["data.heldout_size=1000"]).data.heldout_size == 1000


def test_rollout_chunk_defaults_by_device_and_a_set_value_wins():
    from seqgan.config import AdversarialConfig

    assert AdversarialConfig().rollout_rows("cpu") == 1024  # the CPU's as before: its runs are unchanged
    assert AdversarialConfig().rollout_rows("cuda") == 16384  # fewer, larger sampling steps on a GPU
    assert AdversarialConfig(rollout_chunk=100).rollout_rows("cuda") == 100
    with pytest.raises(ConfigError, match="rollout_chunk must be >= 1"):
        load_config(None, ["adversarial.rollout_chunk=0"])
