"""algorithm: gsgan: G trained by backpropagation through Gumbel-softmax samples scored by D."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqgan.algorithms import ALGORITHMS, Context
from seqgan.algorithms.common import Streams
from seqgan.algorithms.gsgan import GSGAN, GSGANConfig
from seqgan.cli.main import main
from seqgan.config import ConfigError, load_config
from seqgan.distributed import SINGLE
from seqgan.metrics.logger import without_clock
from seqgan.models.discriminator import realness
from seqgan.rl.relaxed import relaxed_sample
from seqgan.training.checkpoint import latest_checkpoint, load_state
from seqgan.training.experiment import make_data
from seqgan.training.run import Trainer

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke_gsgan.yaml"


def rows(run: Path) -> list[dict]:
    return without_clock([json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()])


def build(name: str = "gsgan", overrides: tuple[str, ...] = (), config: Path = SMOKE):
    cfg = load_config(config, list(overrides))
    data = make_data(cfg, torch.device("cpu"))
    streams = Streams(torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    return ALGORITHMS[name](Context(cfg, data, torch.device("cpu"), SINGLE, streams))


def no_policy_gradient(monkeypatch) -> None:
    """Any use of SeqGAN's rollouts or policy-gradient loss fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a relaxed GAN used SeqGAN's rollout rewards or policy-gradient loss")

    for target in (
        "seqgan.rl.rollout.rollout_rewards",
        "seqgan.algorithms.seqgan.rollout_rewards",
        "seqgan.algorithms.seqgan.policy_gradient_step",
        "seqgan.algorithms.seqgan.pg_loss",
        "seqgan.algorithms.reinforce.pg_loss",
        "seqgan.rl.losses.pg_loss",
    ):
        monkeypatch.setattr(target, refuse)


def changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}


def test_gsgan_trains_every_generator_parameter_through_the_relaxation_alone(monkeypatch):
    no_policy_gradient(monkeypatch)
    algo = build()
    before = {k: v.clone() for k, v in algo.generator.state_dict().items()}
    d_before = {k: v.clone() for k, v in algo.discriminator.state_dict().items()}
    logs = algo.generator_step()
    assert set(logs) == {"g_loss", "beta"} and logs["beta"] == pytest.approx(1.0)  # the schedule's start
    assert changed(before, algo.generator) == set(before)  # every parameter of G moved
    assert not changed(d_before, algo.discriminator)  # G's step leaves D alone


def test_with_the_relaxation_off_no_gradient_reaches_g(monkeypatch):
    """The control: D reads hard one-hots, so G's step has no gradient and G stays where it was
    (a G step that learnt anyway would be using some other signal, e.g. a policy gradient)."""
    no_policy_gradient(monkeypatch)
    algo = build(overrides=("gsgan.relaxation=hard",))
    before = {k: v.clone() for k, v in algo.generator.state_dict().items()}
    algo.generator_step()
    assert all(p.grad is None for p in algo.generator.parameters())
    assert not changed(before, algo.generator)


def test_gs_gans_generator_gradient_is_that_of_its_gan_loss_through_d():
    """G's update is the GAN loss's gradient through D's soft input: with SGD (lr 1) the step moves
    G's output bias by exactly -grad of -mean log sigmoid(D(relaxed sample))."""
    algo = build(overrides=("adversarial.grad_clip=1000000",))
    g = algo.generator
    opt = torch.optim.SGD(g.parameters(), lr=1.0)
    algo.optimizers["adversarial"].optimizer = opt
    state = algo.streams.sample.get_state(), algo.streams.shuffle.get_state()
    algo.discriminator.eval()  # no dropout, so that both passes see the same D
    algo.discriminator.train = lambda mode=True: algo.discriminator  # and it stays so inside the step
    algo.real_one_hots()  # the draw the step makes first
    _, fake = relaxed_sample(g, 16, algo.data.length, 1.0, algo.streams.sample, relaxation="soft")
    loss = -torch.nn.functional.logsigmoid(realness(algo.discriminator.soft_logits(fake))).mean()
    (grad,) = torch.autograd.grad(loss, [g.head.bias])
    algo.streams.sample.set_state(state[0])
    algo.streams.shuffle.set_state(state[1])
    before = g.head.bias.detach().clone()
    algo.generator_step()
    torch.testing.assert_close(g.head.bias.detach(), before - grad)


def test_d_step_trains_d_on_real_against_relaxed_samples(monkeypatch):
    no_policy_gradient(monkeypatch)
    algo = build()
    g_before = {k: v.clone() for k, v in algo.generator.state_dict().items()}
    d_before = {k: v.clone() for k, v in algo.discriminator.state_dict().items()}
    loss = algo.discriminator_step()
    assert loss > 0 and changed(d_before, algo.discriminator) and not changed(g_before, algo.generator)


def test_gsgan_has_no_d_pretraining_and_no_rollout_policy():
    algo = build()
    assert algo.epochs("d_pretrain") == 0 and algo.epochs("adversarial") == 4
    assert set(algo.models()) == {"generator", "discriminator"}


def test_gsgan_config_rejects_what_it_cannot_honour():
    with pytest.raises(ConfigError, match="adversarial.rollout_num is a setting of SeqGAN's rollouts"):
        load_config(SMOKE, ["adversarial.rollout_num=8"])
    with pytest.raises(ConfigError, match="discriminator.label_smoothing applies to SeqGAN's D rounds"):
        load_config(SMOKE, ["discriminator.label_smoothing=0.1"])
    with pytest.raises(ConfigError, match="d_pretrain: algorithm=gsgan does not use this section"):
        load_config(SMOKE, ["d_pretrain.steps=3"])
    with pytest.raises(ConfigError, match="gsgan.schedule='cosine'"):
        load_config(SMOKE, ["gsgan.schedule=cosine"])
    with pytest.raises(ConfigError, match="gsgan.beta_max must be a number >= 1"):
        load_config(SMOKE, ["gsgan.beta_max=0.5"])
    with pytest.raises(ConfigError, match="gsgan.loss='wgan'"):
        load_config(SMOKE, ["gsgan.loss=wgan"])
    assert load_config(SMOKE).algo == GSGANConfig()


def test_gsgan_smoke_run_through_the_cli_samples_resumes_and_evaluates(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    assert main(["train", "configs/smoke_gsgan.yaml", "--out", str(run), "--quiet"]) == 0
    last = rows(run)[-1]
    assert last["phase"] == "adversarial" and last["epoch"] == 4
    assert {"g_loss", "d_loss", "beta", "d_acc", "nll_oracle"} <= set(last)
    assert not [r for r in rows(run) if r["phase"] == "d_pretrain"]
    assert "gsgan:\n  loss: standard" in (run / "config.yaml").read_text()
    state = load_state(latest_checkpoint(run / "checkpoints"))
    assert state["steps"]["adversarial_g"] == 4  # the schedule's place, kept for a resume
    assert main(["train", "--resume", str(run), "--quiet", "adversarial.epochs=5"]) == 0
    assert rows(run)[-1]["epoch"] == 5
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["evaluate", str(run), "-n", "64"]) == 0
    assert "nll_oracle" in json.loads(capsys.readouterr().out)


def resumes_as_if_never_stopped(tmp_path: Path, config: Path, algorithm: type, crash_on_third_call) -> None:
    """Train `config` whole; train it again dying in its third adversarial G step (`algorithm`'s
    generator_step; the checkpoint after epoch 2 exists) and resume: the same metric rows."""
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    for out in (whole, crashed):
        trainer = Trainer(load_config(config), out, quiet=True)
        trainer.start(["test"])
        if out == whole:
            trainer.run()
            continue
        with crash_on_third_call(algorithm, "generator_step"):
            trainer.run()
    resumed = Trainer(load_config(crashed / "config.yaml"), crashed, quiet=True)
    resumed.resume()
    resumed.run()
    assert rows(crashed) == rows(whole)


def test_an_interrupted_gsgan_run_resumes_as_if_never_stopped(tmp_path, crash_on_third_call):
    """Killed in adversarial epoch 3, resumed from epoch 2's checkpoint: it ends exactly as the
    uninterrupted run, so the temperature schedule's place and the random streams continue."""
    resumes_as_if_never_stopped(tmp_path, SMOKE, GSGAN, crash_on_third_call)
