"""`seqgan config --explain KEY`: every setting's type, default and documentation, read from the
config dataclasses' source (`seqgan.cli.explain`)."""

from __future__ import annotations

import dataclasses

import pytest

from seqgan.cli.explain import explain, field_docs, sections, settings
from seqgan.cli.main import main
from seqgan.config import AdversarialConfig, ConfigError, ExperimentConfig


def test_a_key_prints_its_type_default_and_docstring(capsys):
    assert main(["config", "--explain", "adversarial.rollout_num"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "adversarial.rollout_num: int, default 16"
    assert "Monte Carlo continuations per prefix" in out


def test_a_multi_line_docstring_is_printed_whole():
    text = explain("adversarial.baseline")
    assert text.startswith("adversarial.baseline: str, default 'none'")
    assert "'prefix':" in text and "A(t) = Q(t) - Q(t-1)" in text


def test_a_section_lists_every_key_with_one_line(capsys):
    assert main(["config", "--explain", "adversarial"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("adversarial: The adversarial loop")
    for f in dataclasses.fields(AdversarialConfig):
        assert f"  {f.name} " in out, f.name
    line = next(x for x in out.splitlines() if x.startswith("  rollout_num "))
    assert line.split() == ["rollout_num", "int", "=", "16", "N:", "Monte", "Carlo", "continuations", "per", "prefix."]


def test_algorithm_sections_and_top_level_settings_are_explained():
    assert "reinforce.baseline: str, default 'none'" in explain("reinforce.baseline")
    assert explain("seed").startswith("seed: int, default 0")
    listing = explain("")
    assert "reinforce:" in listing and "adversarial:" in listing and "algorithm:" in listing


def test_every_setting_of_every_section_is_found_in_the_source():
    for name, cls in sections().items():
        docs = field_docs(cls)
        for s in settings(cls, f"{name}."):
            assert s.key.split(".", 1)[1] in docs and s.type, s.key
    assert field_docs(ExperimentConfig)["threads"][1].startswith("torch intra-op threads")


def test_unknown_keys_suggest_the_closest_one(capsys):
    with pytest.raises(ConfigError, match="did you mean 'rollout_num'"):
        explain("adversarial.rollout_nm")
    assert main(["config", "--explain", "adversarail"]) == 2
    assert "did you mean 'adversarial'" in capsys.readouterr().err


def test_train_help_points_to_explain(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "seqgan config --explain" in capsys.readouterr().out
