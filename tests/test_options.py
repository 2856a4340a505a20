"""Issue 8's options: each one validated, and each one shown to change the computation.

Hand-computed values for the pure loss terms; for the model and training options, a run with the
option and one without, from the same state and seed, must differ.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from seqgan.algorithms.common import Streams, mle_epoch
from seqgan.algorithms.seqgan import Players, policy_gradient_step
from seqgan.config import ConfigError, load_config
from seqgan.metrics.logger import read_metrics, without_clock
from seqgan.models.discriminator import RNNDiscriminator
from seqgan.models.generator import Generator
from seqgan.rl.losses import discount_rewards, token_kl
from seqgan.rl.rollout import rollout_sequences
from seqgan.training.checkpoint import latest_checkpoint
from seqgan.training.run import Trainer

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"


def logged(run: Path) -> list[dict]:
    """The run's metrics rows without the time they were written at."""
    return without_clock(read_metrics(run / "metrics.jsonl"))


def smoke_trainer(tmp_path: Path, *overrides: str) -> Trainer:
    trainer = Trainer(load_config(SMOKE, list(overrides)), tmp_path, quiet=True)
    trainer.start(["test"])
    return trainer


def pg_step(t: Trainer, seed: int = 0, reference: torch.nn.Module | None = None, **settings) -> dict[str, torch.Tensor]:
    """One policy-gradient step of a copy of t's G from fixed state, with adversarial `settings`
    changed; returns the new G weights."""
    g, rollout = copy.deepcopy(t.generator), copy.deepcopy(t.algorithm.rollout)
    opt = torch.optim.Adam(g.parameters(), lr=t.cfg.adversarial.g_lr)
    a = dataclasses.replace(t.cfg.adversarial, **settings)
    streams = Streams(torch.Generator().manual_seed(seed), torch.Generator())
    policy_gradient_step(Players(g, rollout, t.algorithm.discriminator, reference), opt, a, t.data.length, streams)
    return {k: v.clone() for k, v in g.state_dict().items()}


def differs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


def config_error(*overrides: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(SMOKE, list(overrides))
    return str(err.value)


# ----------------------------------------------------------------------------- adversarial.discount


def test_discount_rewards_by_hand():
    q = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.2, 0.4, 0.6, 0.8]])
    torch.testing.assert_close(discount_rewards(q, 0.5), torch.tensor([[0.125, 0.25, 0.5, 1.0], [0.025, 0.1, 0.3, 0.8]]))
    # Row 0 ends at its 2nd token: it is L = 2, so t = 1 is one step from the end; padding keeps gamma^0.
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    torch.testing.assert_close(discount_rewards(q, 0.5, mask), torch.tensor([[0.5, 1.0, 1.0, 1.0], [0.025, 0.1, 0.3, 0.8]]))
    assert discount_rewards(q, 1.0) is q


def test_discount_changes_the_policy_gradient_step(tmp_path):
    t = smoke_trainer(tmp_path)
    assert differs(pg_step(t), pg_step(t, discount=0.5))
    assert not differs(pg_step(t), pg_step(t, discount=1.0))


def test_discount_is_validated():
    assert "discount" in config_error("adversarial.discount=0")
    assert "discount" in config_error("adversarial.discount=1.5")


# ----------------------------------------------------------------------------- adversarial.baseline


def test_each_baseline_takes_its_own_policy_gradient_step(tmp_path):
    """Same G, same batch and rollouts (same seed); the prefix baseline's step is neither the plain
    nor the mean baseline's (its values are checked by hand in test_losses.py)."""
    trainers = {b: smoke_trainer(tmp_path / b, f"adversarial.baseline={b}") for b in ("none", "mean", "prefix")}
    start = [t.generator.state_dict() for t in trainers.values()]
    assert not differs(start[0], start[2])
    after = {b: pg_step(t) for b, t in trainers.items()}
    assert differs(after["prefix"], after["mean"]) and differs(after["prefix"], after["none"])
    assert differs(after["prefix"], start[2])


# ----------------------------------------------------------------------------- adversarial.kl_weight


def test_token_kl_by_hand():
    p = torch.tensor([[[0.5, 0.5]]]).log()  # (1, 1, 2)
    q = torch.tensor([[[0.25, 0.75]]]).log()
    want = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    torch.testing.assert_close(token_kl(p, q), torch.tensor([[want]]))
    # logits, not probabilities: a shift of all logits is the same distribution
    torch.testing.assert_close(token_kl(p + 3.0, q - 1.0), torch.tensor([[want]]))
    assert token_kl(q, q).abs().max() < 1e-7


def test_token_kl_gradient_flows_only_into_the_policy():
    p = torch.randn(2, 3, 5, requires_grad=True)
    q = torch.randn(2, 3, 5, requires_grad=True)
    token_kl(p, q).sum().backward()
    assert p.grad is not None and p.grad.abs().sum() > 0 and q.grad is None


def test_kl_weight_changes_the_step_and_pulls_g_towards_the_reference(tmp_path):
    t = smoke_trainer(tmp_path, "adversarial.kl_weight=1.0")
    reference = copy.deepcopy(t.generator)
    with torch.no_grad():  # at the phase start G equals the reference, where the KL has zero gradient
        reference.head.bias.add_(torch.randn(reference.head.bias.shape, generator=torch.Generator().manual_seed(3)))
    plain = pg_step(t, kl_weight=0.0)
    anchored = pg_step(t, kl_weight=50.0, reference=reference)
    assert differs(plain, anchored)

    def kl_to_reference(weights):
        g = copy.deepcopy(t.generator)
        g.load_state_dict(weights)
        y = t.data.test[:64]
        with torch.no_grad():
            return float(token_kl(g(y), reference(y)).mean())

    assert kl_to_reference(anchored) < kl_to_reference(plain)


def test_kl_reference_is_a_checkpointed_copy_of_g_at_the_adversarial_start(tmp_path):
    t = smoke_trainer(tmp_path, "adversarial.kl_weight=0.1", "adversarial.epochs=1", "eval.every=1")
    assert "reference" in t.models()
    assert "reference" not in smoke_trainer(tmp_path / "plain").models()
    t.run()
    assert "kl_mle" in (tmp_path / "metrics.jsonl").read_text().splitlines()[-1]
    assert (latest_checkpoint(tmp_path / "checkpoints") / "reference.safetensors").is_file()


@pytest.mark.parametrize("option", ["adversarial.kl_weight=0.5", "generator.noise_dim=3"])
def test_resume_with_an_option_equals_an_uninterrupted_run(tmp_path, crash_on_third_pg_step, option):
    smoke_trainer(tmp_path / "full", option).run()
    with crash_on_third_pg_step():  # dies in adversarial epoch 3, after the epoch-2 checkpoint
        smoke_trainer(tmp_path / "crash", option).run()
    resumed = Trainer(load_config(tmp_path / "crash" / "config.yaml"), tmp_path / "crash", quiet=True)
    resumed.resume()
    resumed.run()
    assert logged(tmp_path / "crash") == logged(tmp_path / "full")


def test_kl_weight_is_validated():
    assert "kl_weight" in config_error("adversarial.kl_weight=-1")


# ----------------------------------------------------------------------------- generator.noise_dim


def noisy_generator(cell: str = "lstm", layers: int = 2) -> Generator:
    torch.manual_seed(0)
    return Generator(11, 6, 8, num_layers=layers, cell=cell, init_std=1.0, noise_dim=4)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_noise_sets_the_initial_state_and_so_the_likelihood(cell):
    g = noisy_generator(cell)
    y = torch.randint(0, 11, (5, 7), generator=torch.Generator().manual_seed(0))
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(g.log_probs(y, noise=z), g.log_probs(y))
    torch.testing.assert_close(g.log_probs(y), g.log_probs(y, noise=torch.zeros(5, 4)))  # no noise: z = 0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sampled_noise_is_the_z_that_teacher_forcing_and_rollouts_continue_from(cell):
    g = noisy_generator(cell)
    y, z = g.sample(6, 7, torch.Generator().manual_seed(2), temperature=0, return_noise=True)  # greedy
    assert z.shape == (6, 4)
    # Greedy decoding is the argmax of the teacher-forced logits only under the z it was drawn with.
    assert torch.equal(g(y, z).argmax(-1), y)
    assert not torch.equal(g(y).argmax(-1), y)
    # Near-greedy rollouts from every prefix reproduce the greedy sequence only when they go on from ITS z.
    out = rollout_sequences(g, y, 2, torch.Generator().manual_seed(0), chunk_rows=7, temperature=1e-4, noise=z)
    assert torch.equal(out, y.expand(6, 2, 6, 7))
    out = rollout_sequences(g, y, 2, torch.Generator().manual_seed(0), chunk_rows=7, temperature=1e-4)
    assert not torch.equal(out, y.expand(6, 2, 6, 7))


def test_noise_draws_differ_per_sequence_and_only_with_noise():
    g = noisy_generator()
    _, z = g.sample(50, 5, torch.Generator().manual_seed(0), return_noise=True)
    assert z.std() > 0.5 and not torch.equal(z[0], z[1])
    plain = Generator(11, 6, 8)
    assert plain.sample(3, 5, torch.Generator(), return_noise=True)[1] is None
    with pytest.raises(ValueError, match="noise_dim=0"):
        plain.log_probs(torch.zeros(3, 5, dtype=torch.long), noise=torch.zeros(3, 4))


def test_mle_draws_a_noise_per_sequence():
    g = noisy_generator()
    data = torch.randint(0, 11, (32, 7), generator=torch.Generator().manual_seed(0))
    weights = []
    for seed_rng in (torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)):
        gg = copy.deepcopy(g)
        mle_epoch(gg, torch.optim.Adam(gg.parameters(), 0.01), data, 8, 5.0, seed_rng)
        weights.append(gg.state_dict())
    assert not differs(weights[0], weights[1])  # the z are drawn from the shuffle generator: reproducible
    # with z = 0 the noise map's weight would get no gradient and stay as it was
    assert weights[0]["noise_map.weight"].ne(g.state_dict()["noise_map.weight"]).any()


def test_noise_dim_is_validated_and_built(tmp_path):
    assert "noise_dim" in config_error("generator.noise_dim=-1")
    t = smoke_trainer(tmp_path, "generator.noise_dim=3")
    assert t.generator.noise_map.in_features == 3
    assert differs(pg_step(t), pg_step(smoke_trainer(tmp_path / "plain")))


# ----------------------------------------------------------------------------- discriminator.rnn_pooling


def test_attention_pooling_reads_every_step_and_is_trained():
    torch.manual_seed(0)
    last = RNNDiscriminator(13, 8, 6, bidirectional=False, dropout=0.0)
    torch.manual_seed(0)
    pooled = RNNDiscriminator(13, 8, 6, bidirectional=False, dropout=0.0, pooling="attention", attention_heads=2)
    x = torch.randint(0, 13, (4, 9), generator=torch.Generator().manual_seed(0))
    assert pooled(x).shape == (4, 2)
    assert not torch.allclose(pooled(x), last(x))
    pooled(x).sum().backward()
    assert pooled.pool.query.grad.abs().sum() > 0
    assert pooled.pool.attention.in_proj_weight.grad.abs().sum() > 0


def test_rnn_pooling_is_validated():
    assert "kind='rnn'" in config_error("discriminator.rnn_pooling=attention")  # smoke's D is the CNN
    cfg_base = ["discriminator.kind=rnn"]
    with pytest.raises(ConfigError, match="rnn_pooling"):
        load_config(None, [*cfg_base, "discriminator.rnn_pooling=max"])
    with pytest.raises(ConfigError, match="attention_heads applies only"):
        load_config(None, [*cfg_base, "discriminator.attention_heads=2"])
    with pytest.raises(ConfigError, match="must divide"):
        load_config(None, [*cfg_base, "discriminator.rnn_pooling=attention", "discriminator.attention_heads=3"])
    cfg = load_config(None, [*cfg_base, "discriminator.rnn_pooling=attention", "discriminator.attention_heads=4"])
    assert cfg.discriminator.attention_heads == 4


# ----------------------------------------------------------------------------- adversarial.train_g / train_d


# smoke.yaml sets the frozen side's settings; a frozen side takes only the defaults
D_DEFAULTS = ("adversarial.d_steps=5", "adversarial.d_epochs=3", "adversarial.num_negatives=10000")
G_DEFAULTS = ("adversarial.batch_size=64", "adversarial.rollout_num=16", "adversarial.rollout_chunk=null")


@pytest.mark.parametrize(
    ("frozen", "trained", "defaults"),
    [("train_d", "generator", D_DEFAULTS), ("train_g", "discriminator", G_DEFAULTS)],
)
def test_a_frozen_model_keeps_its_weights_through_an_adversarial_epoch(tmp_path, frozen, trained, defaults):
    t = smoke_trainer(tmp_path, "adversarial.epochs=1", f"adversarial.{frozen}=false", *defaults)
    t.phase, t.epoch = "adversarial", 0
    models = {"generator": t.generator, "discriminator": t.algorithm.discriminator}
    before = {k: copy.deepcopy(m.state_dict()) for k, m in models.items()}
    t.algorithm.adversarial_epoch()
    still = "discriminator" if trained == "generator" else "generator"
    assert not differs(before[still], models[still].state_dict())
    assert differs(before[trained], models[trained].state_dict())


def test_freezing_is_validated():
    both = config_error("adversarial.train_g=false", "adversarial.train_d=false", *G_DEFAULTS, *D_DEFAULTS)
    assert "train_g and train_d are both false" in both
    assert "kl_weight does not apply" in config_error("adversarial.train_g=false", "adversarial.kl_weight=0.1", *G_DEFAULTS)
    assert "d_epochs does not apply" in config_error("adversarial.train_d=false", *D_DEFAULTS, "adversarial.d_epochs=2")
    assert "adversarial.train_g=false" in config_error("adversarial.g_steps=0")


# ----------------------------------------------------------------------------- generator.attention


def attentive_generator(cell: str = "lstm", noise_dim: int = 0) -> Generator:
    torch.manual_seed(0)
    return Generator(11, 6, 8, num_layers=2, cell=cell, init_std=1.0, noise_dim=noise_dim, attention=True)


@pytest.mark.parametrize(("cell", "noise_dim"), [("lstm", 0), ("gru", 3)])
def test_attention_step_by_step_equals_teacher_forcing_and_rollouts_continue_its_cache(cell, noise_dim):
    g = attentive_generator(cell, noise_dim)
    y, z = g.sample(6, 7, torch.Generator().manual_seed(2), temperature=0, return_noise=True)  # greedy
    assert torch.equal(g(y, z).argmax(-1), y)  # teacher forcing picks what step-by-step decoding picked
    states, logits = g.prefix_states(y, z)
    torch.testing.assert_close(torch.stack(logits, dim=1), g(y, z)[:, 1:])
    # Near-greedy rollouts from every prefix reproduce the greedy sequence only if the cache came along.
    out = rollout_sequences(g, y, 2, torch.Generator().manual_seed(0), chunk_rows=7, temperature=1e-4, noise=z)
    assert torch.equal(out, y.expand(6, 2, 6, 7))


def test_attention_read_out_changes_the_logits_and_is_causal():
    g = attentive_generator()
    y = torch.randint(0, 11, (4, 7), generator=torch.Generator().manual_seed(0))
    with_read_out = g(y)
    with torch.no_grad():
        g.head.weight[:, 8:] = 0.0  # the head's columns that read the attention
    assert not torch.allclose(with_read_out, g(y))
    g = attentive_generator()
    changed = y.clone()
    changed[:, 4] = (y[:, 4] + 1) % 11  # y_5 is read from position 5 on (0-based index 5)
    a, b = g(y), g(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_attention_trains_through_the_adversarial_step(tmp_path):
    t = smoke_trainer(tmp_path, "generator.attention=true")
    assert t.generator.head.in_features == 2 * t.cfg.generator.hidden_dim
    before = copy.deepcopy(t.generator.state_dict())
    after = pg_step(t)
    assert not torch.equal(before["attn.weight"], after["attn.weight"])


# ----------------------------------------------------------------------------- pretrain.patience

EARLY = ("pretrain.epochs=10", "pretrain.patience=2", "data.num_valid=64", "d_pretrain.steps=0", "adversarial.epochs=0")


def test_early_stopping_keeps_the_best_epoch_and_resumes_stopped(tmp_path, monkeypatch):
    t = smoke_trainer(tmp_path / "early", *EARLY)
    script = {0: 9.0, 1: 3.0, 2: 2.0, 3: 2.5, 4: 2.6}  # validation NLL by epoch: best at 2, then two worse
    real = t.evaluator.nll
    monkeypatch.setattr(t.evaluator, "nll", lambda m, d, c: script[t.epoch] if d is t.data.valid else real(m, d, c))
    t.run()
    monkeypatch.undo()
    assert t.early.state == {"best": 2.0, "best_epoch": 2, "stopped_at": 4}
    rows = [json.loads(line) for line in (tmp_path / "early" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["epoch"] == 4 and rows[-1]["best_epoch"] == 2
    # G is the epoch-2 model: the same as a run of exactly 2 MLE epochs
    two = smoke_trainer(tmp_path / "two", "pretrain.epochs=2", "d_pretrain.steps=0", "adversarial.epochs=0")
    two.run()
    assert not differs(t.generator.state_dict(), two.generator.state_dict())
    # a resumed run knows it stopped and trains no further MLE epoch
    resumed = Trainer(load_config(tmp_path / "early" / "config.yaml"), tmp_path / "early", quiet=True)
    resumed.resume()
    assert resumed.early.stopped_at == 4 and resumed.g_epoch() == 4
    resumed.run()
    assert not differs(resumed.generator.state_dict(), two.generator.state_dict())


def test_without_patience_early_stopping_changes_nothing(tmp_path):
    t = smoke_trainer(tmp_path, "data.num_valid=64", "pretrain.epochs=2", "d_pretrain.steps=0", "adversarial.epochs=0")
    assert "mle_best" not in t.models()
    t.run()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(r["nll_valid"] != r["nll_test"] for r in rows)  # its own held-out set, not the test set
    assert not torch.equal(t.data.valid, t.data.test[:64]) and not torch.equal(t.data.valid, t.data.train[:64])


def test_early_stopping_is_validated():
    assert "needs a validation set" in config_error("pretrain.patience=2")
    assert "valid_seed applies only" in config_error("data.valid_seed=7")
    assert "valid_seed must differ" in config_error("data.num_valid=8", "data.valid_seed=1")
    assert "pretrain.epochs is 0" in config_error("pretrain.patience=2", "data.num_valid=8", "pretrain.epochs=0")


# ----------------------------------------------------------------------------- all together, on text


def test_every_option_together_trains_on_variable_length_text(tmp_path):
    from seqgan.cli.main import main

    lines = ["a b c", "b c d e", "c d", "a a b b c", "d e a", "e d c b a"] * 6
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "valid.txt").write_text("\n".join(lines[:6]) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    files = [f"data.train={tmp_path / 'train.txt'}", f"data.valid={tmp_path / 'valid.txt'}"]
    settings = """
        data.max_len=6 data.heldout_size=4 pretrain.epochs=3 pretrain.batch_size=8 pretrain.patience=1
        d_pretrain.steps=1 d_pretrain.num_negatives=16 adversarial.epochs=2 adversarial.batch_size=4
        adversarial.num_negatives=16 adversarial.rollout_num=2 adversarial.discount=0.9
        adversarial.kl_weight=0.1 adversarial.baseline=mean discriminator.batch_size=8
        discriminator.kind=rnn discriminator.rnn_hidden=4 discriminator.rnn_pooling=attention
        discriminator.attention_heads=2 discriminator.embed_dim=8 generator.embed_dim=8
        generator.hidden_dim=8 generator.noise_dim=2 generator.attention=true generator.cell=gru
        generator.num_layers=2 eval.every=1 eval.d_samples=8 eval.bleu_samples=8 eval.final_samples=5
    """.split()
    args = ["train", "configs/text.yaml", "--out", str(run), "--quiet", *files, *settings]
    assert main(args) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]
    assert last["phase"] == "adversarial" and all(k in last for k in ("kl_mle", "nll_valid", "g_loss", "d_acc"))
    assert all(math.isfinite(v) for v in last.values() if isinstance(v, float))
