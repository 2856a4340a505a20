"""algorithm: scratch: no pre-training, dense per-prefix rewards from a recurrent D, discounted,
a baseline subtracted; the paper's regularisers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from seqgan.algorithms.scratch import Scratch
from seqgan.cli.main import main
from seqgan.config import ConfigError, load_config
from seqgan.models.discriminator import RNNDiscriminator, position_signal, realness
from seqgan.models.embedding import use_word_vectors
from seqgan.models.generator import Generator
from seqgan.rl import losses
from seqgan.rl.returns import centred_rewards, discounted_returns, ewma_baseline, mean_baseline_advantages
from seqgan.training.checkpoint import latest_checkpoint, load_state
from test_gsgan import build, resumes_as_if_never_stopped, rows

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke_scratch.yaml"


def test_discounted_returns_by_hand():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, -1.0]])
    torch.testing.assert_close(discounted_returns(rewards, 0.5), torch.tensor([[2.75, 3.5, 3.0], [3.75, -0.5, -1.0]]))
    mask = torch.tensor([[True, True, False], [True, True, True]])  # row 0 ended at step 2
    torch.testing.assert_close(discounted_returns(rewards, 0.5, mask), torch.tensor([[2.0, 2.0, 0.0], [3.75, -0.5, -1.0]]))
    assert torch.equal(discounted_returns(rewards, 0.0), rewards)
    adv = mean_baseline_advantages(torch.tensor([[1.0, 4.0], [3.0, 0.0]]))
    torch.testing.assert_close(adv, torch.tensor([[-1.0, 2.0], [1.0, -2.0]]))


def test_centred_rewards_and_the_ewma_baseline_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)], [-math.log(3.0), 50.0]])  # D = 1/2, 3/4, 1/4, ~1
    torch.testing.assert_close(centred_rewards(logits), torch.tensor([[0.0, 0.5], [-0.5, 1.0]]))
    assert ewma_baseline(0.0, 2.0, 0.08) == pytest.approx(1.84)
    assert ewma_baseline(1.84, -1.0, 0.08) == pytest.approx(0.08 * 1.84 - 0.92)
    assert ewma_baseline(5.0, 1.0, 0.0) == 1.0  # decay 0: the batch's own mean
    with pytest.raises(ValueError, match="decay"):
        ewma_baseline(0.0, 1.0, 1.5)


RIGGED = lambda tokens: (tokens % 3).float() - 1.0  # noqa: E731  D's logit for prefix y_1..y_t: (y_t mod 3) - 1


def advantages_of_a_g_step(monkeypatch, algo) -> tuple[torch.Tensor, torch.Tensor]:
    """(the samples, the advantages G's step weighted them with) of one G step against `RIGGED`."""
    monkeypatch.setattr(algo.discriminator, "prefix_scores", RIGGED)
    seen = {}

    def spy(log_probs, adv, baseline="none", mask=None):
        seen["adv"] = adv.detach().clone()
        return losses.pg_loss(log_probs, adv, baseline, mask)

    monkeypatch.setattr("seqgan.algorithms.scratch.pg_loss", spy)
    state = algo.streams.sample.get_state()
    samples = algo.generator.sample(64, 10, algo.streams.sample)
    algo.streams.sample.set_state(state)
    algo.generator_step()
    return samples, seen["adv"]


def returns_by_hand(rewards: list[list[float]], gamma: float = 0.23) -> torch.Tensor:
    return torch.tensor(
        [[sum(gamma ** (s - t) * row[s] for s in range(t, len(row))) for t in range(len(row))] for row in rewards]
    )


def test_scratch_g_step_with_logit_rewards_and_step_means_by_hand(monkeypatch):
    """Rewards = the rigged D's logits, returns discounted with gamma = 0.23, less each step's batch mean."""
    algo = build("scratch", ("scratch.reward=logit", "scratch.baseline=step_mean"), config=SMOKE)
    samples, adv = advantages_of_a_g_step(monkeypatch, algo)
    want = returns_by_hand(RIGGED(samples).tolist())
    torch.testing.assert_close(adv, want - want.mean(dim=0, keepdim=True))
    assert not torch.equal(adv, adv[:, -1:].expand_as(adv))  # dense: not one reward per sequence


def test_scratch_g_steps_with_the_papers_rewards_and_ewma_baseline_by_hand(monkeypatch):
    """The defaults (the paper's code): r_t = 2 sigmoid(logit) - 1, and one baseline number carried
    from step to step: b_1 = 0.92 * mean(R of batch 1), b_2 = 0.08 * b_1 + 0.92 * mean(R of batch 2)."""
    algo = build("scratch", config=SMOKE)
    assert (algo.cfg.algo.reward, algo.cfg.algo.baseline, algo.cfg.algo.baseline_decay) == ("centred", "ewma", 0.08)
    b = 0.0
    for _ in range(2):
        samples, adv = advantages_of_a_g_step(monkeypatch, algo)
        returns = returns_by_hand((2 * torch.sigmoid(RIGGED(samples)) - 1).tolist())
        b = 0.08 * b + 0.92 * returns.mean().item()
        torch.testing.assert_close(adv, returns - b)
        assert algo.steps["scratch_baseline"] == pytest.approx(b)  # kept for a resume
    assert b != 0.0


def test_the_papers_regularisers_reach_the_optimizers_and_d(monkeypatch):
    algo = build("scratch", config=SMOKE)
    for name in ("adversarial", "discriminator"):
        assert algo.optimizers[name].optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    d = algo.discriminator
    assert d.embedding_dropout == 0.1  # the smoke config sets the paper's value
    d.train()
    dropped = d.table()
    assert 0 < (dropped == 0).float().mean() < 0.3 and not torch.equal(dropped, d.table())  # a fresh mask per pass
    d.eval()
    assert torch.equal(d.table(), d.embedding.weight)
    # D's step adds d_l2 * sum(w^2) / 2 over every weight: with a huge d_l2 the loss is nearly that term
    big = build("scratch", ("scratch.d_l2=1000.0",), config=SMOKE)
    penalty = 1000.0 * 0.5 * sum(p.pow(2).sum().item() for p in big.discriminator.parameters())
    assert float(big.discriminator_step()) == pytest.approx(penalty, rel=1e-3)
    with pytest.raises(ConfigError, match="embedding_dropout applies to kind=rnn"):
        load_config(ROOT / "configs" / "smoke.yaml", ["discriminator.embedding_dropout=0.1"])
    for bad, match in (("scratch.reward=log", "scratch.reward='log'"), ("scratch.baseline_decay=1", "baseline_decay")):
        with pytest.raises(ConfigError, match=match):
            load_config(SMOKE, [bad])


def test_the_position_signal_by_hand():
    """4 positions, 2 waves: periods 2 and 4, shifts 0 and 2: cos(pi t / 2) and cos(pi (t / 4 + 2))."""
    r = math.sqrt(0.5)
    want = torch.tensor([[1.0, 1.0], [0.0, r], [-1.0, 0.0], [0.0, -r]])
    torch.testing.assert_close(position_signal(4, 2), want, atol=1e-6, rtol=0)
    assert position_signal(20, 8).shape == (20, 8)


def test_a_d_with_the_position_signal_reads_positions_and_stays_causal():
    torch.manual_seed(0)
    d = RNNDiscriminator(7, 4, 5, cell="lstm", bidirectional=False, dropout=0.0, position_dim=3).eval()
    assert d.rnn.input_size == 4 + 3
    same = torch.full((1, 6), 2)  # one token six times: without positions each step's input is the same
    inputs = []
    d.rnn.register_forward_hook(lambda module, args, out: inputs.append(args[0]))
    d.prefix_scores(same)
    steps = inputs[0][0]  # (T, E + P)
    assert torch.equal(steps[:, :4], steps[:1, :4].expand(6, 4)) and torch.equal(steps[:, 4:], position_signal(6, 3))
    tokens = torch.randint(0, 7, (3, 6))
    changed = tokens.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % 7  # change the last two tokens only
    a, b = d.prefix_scores(tokens), d.prefix_scores(changed)
    torch.testing.assert_close(a[:, :4], b[:, :4])  # a prefix's score never reads the future
    assert not torch.allclose(a[:, 4:], b[:, 4:])
    with pytest.raises(ConfigError, match="position_dim applies only to kind='rnn'"):
        load_config(ROOT / "configs" / "smoke.yaml", ["discriminator.position_dim=8"])
    assert build("scratch", config=SMOKE).discriminator.position_dim == 8  # the paper's 8 waves


def test_scratch_has_no_pre_training():
    algo = build("scratch", config=SMOKE)
    assert (algo.epochs("mle"), algo.epochs("d_pretrain"), algo.epochs("adversarial")) == (0, 0, 4)
    with pytest.raises(ConfigError, match="pretrain: algorithm=scratch does not use this section"):
        load_config(SMOKE, ["pretrain.epochs=3"])


def test_scratch_needs_a_left_to_right_recurrent_d():
    with pytest.raises(ConfigError, match="discriminator.bidirectional=false"):
        load_config(SMOKE, ["discriminator.bidirectional=true"])
    with pytest.raises(ConfigError, match="scratch.discount=1.5"):
        load_config(SMOKE, ["scratch.discount=1.5"])


def test_d_step_classifies_every_prefix():
    algo = build("scratch", config=SMOKE)
    before = {k: v.clone() for k, v in algo.discriminator.state_dict().items()}
    assert algo.discriminator_step() > 0
    assert any(not torch.equal(before[k], v) for k, v in algo.discriminator.state_dict().items())
    tokens = torch.randint(0, 50, (3, 10))
    algo.discriminator.eval()
    with torch.no_grad():  # the last prefix's score is the whole sequence's
        torch.testing.assert_close(algo.discriminator.prefix_scores(tokens)[:, -1], realness(algo.discriminator(tokens)))


def test_scratch_smoke_run_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    assert main(["train", "configs/smoke_scratch.yaml", "--out", str(run), "--quiet"]) == 0
    assert [r["phase"] for r in rows(run)] == ["adversarial", "adversarial"]
    assert {"g_loss", "mean_reward", "d_loss", "d_acc", "nll_oracle"} <= set(rows(run)[-1])
    assert "baseline" in rows(run)[-1]
    assert load_state(latest_checkpoint(run / "checkpoints"))["steps"]["scratch_baseline"] != 0.0  # kept for a resume
    assert main(["train", "--resume", str(run), "--quiet", "adversarial.epochs=5"]) == 0
    assert rows(run)[-1]["epoch"] == 5
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_an_interrupted_scratch_run_resumes_as_if_never_stopped(tmp_path, crash_on_third_call):
    """Killed in adversarial epoch 3, resumed from epoch 2's checkpoint: the same rows as the
    uninterrupted run, so the EWMA baseline and D's dropout streams continue where they were."""
    resumes_as_if_never_stopped(tmp_path, SMOKE, Scratch, crash_on_third_call)


def test_a_tied_output_layer_scores_outputs_against_the_input_table_by_hand():
    g = Generator(5, 3, 4, tie_embeddings=True)
    tokens = torch.tensor([[1, 4, 2], [0, 3, 3]])
    h = g.hidden(tokens)  # (2, 3, 4): the LSTM's outputs
    E, P, b = g.embedding.weight, g.head.project.weight, g.head.bias  # (5, 3), (3, 4), (5,)
    want = torch.einsum("bth,eh,ve->btv", h, P, E) + b  # (o P^T) E^T + b
    torch.testing.assert_close(g(tokens), want)
    logits, _ = g.step(torch.full((2,), g.start_token), None)  # what G reads first
    torch.testing.assert_close(logits, want[:, 0])
    torch.testing.assert_close(g.log_probs(tokens), torch.log_softmax(want, -1).gather(2, tokens.unsqueeze(2)).squeeze(2))
    untied = Generator(5, 3, 4)
    assert sum(p.numel() for p in g.parameters()) < sum(p.numel() for p in untied.parameters())


@pytest.mark.parametrize("tied", [True, False])
def test_a_token_that_is_only_predicted_trains_its_input_vector_when_tied(tied):
    g = Generator(6, 3, 4, tie_embeddings=tied)
    tokens = torch.tensor([[1, 2, 5]])  # 5 is a target, never an input (G reads start, 1, 2)
    g.log_probs(tokens).sum().backward()
    assert (g.embedding.weight.grad[5].abs().sum() > 0) == tied


def test_tied_embeddings_train_sample_and_resume_and_need_a_recurrent_g(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--out", str(run), "--quiet", "generator.tie_embeddings=true", "adversarial.epochs=2"]
    assert main(["train", str(SMOKE), *args]) == 0
    assert main(["train", "--resume", str(run), "--quiet", "adversarial.epochs=3"]) == 0
    assert rows(run)[-1]["epoch"] == 3 and math.isfinite(rows(run)[-1]["nll_oracle"])
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3"]) == 0 and len(capsys.readouterr().out.splitlines()) == 3
    with pytest.raises(ConfigError, match="generator.tie_embeddings does not apply to generator.cell=rmc"):
        load_config(ROOT / "configs" / "smoke_relgan.yaml", ["generator.tie_embeddings=true"])


def test_a_tied_output_layer_reads_a_pre_trained_table_too():
    g = use_word_vectors(Generator(5, 3, 4, tie_embeddings=True), torch.randn(5, 7, generator=torch.Generator().manual_seed(0)))
    tokens = torch.tensor([[1, 4, 2]])
    E = g.embedding.weight  # W [u; t]: (5, 3)
    torch.testing.assert_close(g(tokens), g.hidden(tokens) @ (E @ g.head.project.weight).T + g.head.bias)
    g.log_probs(tokens).sum().backward()
    assert g.embedding.trainable.grad[2].abs().sum() > 0 and g.head.project.weight.grad.abs().sum() > 0
