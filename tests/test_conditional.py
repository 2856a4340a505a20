"""Conditional SeqGAN: rigged models whose rewards are known per condition, a condition that is
ignored anywhere (G, rollout policy, D, the training steps) is caught, the conditional oracle is
exact and seeded, bad condition inputs fail with messages naming the file and line, and the
command line trains, samples for a condition and evaluates per condition."""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seqgan.algorithms.common import DRound, Streams, discriminator_condition_accuracy, discriminator_round
from seqgan.algorithms.seqgan import Players, policy_gradient_step
from seqgan.api import parse_condition
from seqgan.cli.main import main
from seqgan.config import AdversarialConfig, ConfigError, load_config
from seqgan.data.conditions import ConditionSpace, oracle_space
from seqgan.data.corpus import CorpusError
from seqgan.metrics.conditional import oracle_condition_scores
from seqgan.metrics.logger import read_metrics, without_clock
from seqgan.metrics.nll import sequence_log_probs
from seqgan.models.condition import (
    FeatureEncoder,
    LabelEncoder,
    SourceEncoder,
    condition_classifier_loss,
    condition_matching_loss,
    mismatched_pairs,
)
from seqgan.models.discriminator import CNNDiscriminator, Discriminator, RNNDiscriminator, prob_real, prob_real_alone
from seqgan.models.generator import Generator
from seqgan.models.oracle import build_oracle, oracle_dataset
from seqgan.rl.rollout import rollout_rewards, rollout_sequences
from seqgan.training.experiment import open_run
from seqgan.training.run import Trainer

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"
V, T, K = 9, 6, 3
REWARDED = [1, 2, 3]  # the token the rigged D counts for class k
FILLER = [1, 5, 3]  # the token the rigged policy emits for class k: class 1's is not rewarded


def logged(run: Path) -> list[dict]:
    """The run's metrics rows without the time they were written at."""
    return without_clock(read_metrics(run / "metrics.jsonl"))


def class_policy(filler: list[int] = FILLER) -> Generator:
    """A conditional LSTM that emits filler[k] at every step for class k, through its initial state.

    The condition sets c0 = tanh(3) e_k; the forget and output gates are open, the input gate is
    shut, so the state keeps c0 and h = tanh(c0): the output layer reads class k from h. A policy
    that lost its condition (zero state) would emit uniform random tokens."""
    H = K
    g = Generator(V, 4, H, cell="lstm", init_std=0, condition=LabelEncoder([K], K))
    with torch.no_grad():
        for p in g.parameters():
            p.zero_()
        g.condition.embeddings[0].weight.copy_(torch.eye(K))
        g.condition_map.weight[H:] = 3.0 * torch.eye(K)  # rows H..2H-1 set c0; h0 stays 0
        g.rnn.bias_ih_l0[:H] = -30.0  # input gate shut
        g.rnn.bias_ih_l0[H : 2 * H] = 30.0  # forget gate open
        g.rnn.bias_ih_l0[3 * H :] = 30.0  # output gate open
        for k, token in enumerate(filler):
            g.head.weight[token, k] = 200.0
    return g


def class_token_fraction(tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """Rigged D(y, c): the fraction of y's tokens that are class c's rewarded token. (R, T), (R, 1) -> (R,)."""
    return (tokens == torch.tensor(REWARDED)[cond[:, 0]].unsqueeze(1)).float().mean(dim=1)


class RiggedD(Discriminator):
    """`class_token_fraction` as a discriminator (logits, an `out` layer for the L2 term), recording what it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(1, 2)
        self.classifier = None
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def plain_logits(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        self.seen.append((tokens.clone(), cond.clone()))
        p = class_token_fraction(tokens, cond)
        return torch.stack([torch.log1p(-p + 1e-6), torch.log(p + 1e-6)], dim=1) + 0.0 * self.out.bias.sum()


def streams() -> Streams:
    """Fixed sampling and shuffling streams."""
    return Streams(torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))


SEQS = torch.tensor([[1, 0, 1, 4, 1, 2], [5, 2, 2, 0, 2, 5], [3, 3, 8, 3, 0, 3], [2, 1, 2, 1, 2, 1], [7, 7, 7, 7, 7, 7]])
CONDS = torch.tensor([[0], [1], [2], [1], [0]])


def expected_rewards(y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """Q(t) = (rewarded tokens in y_1..t + (T - t) [filler_c = rewarded_c]) / T, by hand."""
    out = torch.zeros(y.shape)
    for b in range(len(y)):
        c = int(cond[b, 0])
        for t in range(1, T + 1):
            in_prefix = sum(int(tok) == REWARDED[c] for tok in y[b, :t])
            out[b, t - 1] = (in_prefix + (T - t) * (FILLER[c] == REWARDED[c])) / T
    return out


# ----------------------------------------------------------------------------- rewards per condition


def test_rigged_rewards_are_per_condition_correct():
    want = expected_rewards(SEQS, CONDS)
    assert want[1, 0] == 0 and want[0, 0] == 1.0  # class 1 is never rewarded for its filler; class 0 always
    for chunk in (1, 7, 64, 10_000):  # chunk boundaries must not mix conditions up
        rewards = rollout_rewards(
            class_policy(), class_token_fraction, SEQS, 3, torch.Generator().manual_seed(0), chunk_rows=chunk, cond=CONDS
        )
        torch.testing.assert_close(rewards, want)
    # The same sequences asked for other classes get other rewards: the condition is what decides.
    shifted = (CONDS + 1) % K
    rewards = rollout_rewards(
        class_policy(), class_token_fraction, SEQS, 3, torch.Generator().manual_seed(0), chunk_rows=11, cond=shifted
    )
    torch.testing.assert_close(rewards, expected_rewards(SEQS, shifted))


def test_rollouts_continue_each_row_with_its_own_condition():
    out = rollout_sequences(class_policy(), SEQS, 2, torch.Generator().manual_seed(0), chunk_rows=5, cond=CONDS)
    for t in range(1, T):
        for b in range(len(SEQS)):
            assert bool((out[t - 1, :, b, t:] == FILLER[int(CONDS[b, 0])]).all())
            assert torch.equal(out[t - 1, :, b, :t], SEQS[b, :t].expand(2, -1))


def test_policy_gradient_step_gives_g_rollouts_and_d_the_sampled_condition():
    """G samples class k's filler, the rollouts continue it, D rewards class k's token: with every
    link keeping the condition, every reward is 1; a dropped or shuffled condition anywhere lowers it."""
    policy = class_policy(REWARDED)
    d = RiggedD()
    pool = torch.arange(K).repeat(8).unsqueeze(1)  # (24, 1): the data's conditions
    a = AdversarialConfig(batch_size=12, rollout_num=4, rollout_chunk=16)
    players = Players(copy.deepcopy(policy), policy, d)
    _, reward, _ = policy_gradient_step(players, torch.optim.SGD(policy.parameters(), lr=0.0), a, T, streams(), cond_pool=pool)
    assert reward > 1 - 1e-5
    conds = torch.cat([c for _, c in d.seen])
    assert len(set(conds[:, 0].tolist())) == K  # the batch held several classes


def test_discriminator_learns_real_and_generated_pairs_with_their_own_conditions():
    real_token = [6, 7, 8]
    cond = torch.arange(K).repeat(10).unsqueeze(1)  # (30, 1)
    real = torch.tensor(real_token)[cond[:, 0]].unsqueeze(1).expand(-1, T).contiguous()  # row of class k: all real_token[k]
    d = RiggedD()
    g = class_policy()
    discriminator_round(d, torch.optim.SGD(d.parameters(), lr=0.0), g, real, DRound(12, 1, 6), streams(), cond=cond)
    pairs = [(tokens[i], int(c[i, 0])) for tokens, c in d.seen for i in range(len(tokens))]
    assert len(pairs) == 24
    for tokens, c in pairs:  # every row, real or generated, is seen with the condition it belongs to
        assert int(tokens[0]) in (real_token[c], FILLER[c]) and bool((tokens == tokens[0]).all())
    assert {int(t[0]) for t, _ in pairs} & set(FILLER) and {int(t[0]) for t, _ in pairs} & set(real_token)


@pytest.mark.parametrize("kind", ["label", "features"])
def test_mismatched_pairs_never_pair_a_row_with_its_own_condition(kind):
    rng = torch.Generator().manual_seed(0)
    if kind == "label":  # two label fields: rows differ when either does
        cond = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]).repeat(5, 1)
    else:
        cond = torch.randn(3, 4, generator=rng).repeat(7, 1)
    rows, wrong = mismatched_pairs(cond, 200, rng)
    assert len(rows) == 200 and len(wrong) == 200  # with 3+ distinct conditions no draw survives 8 redraws by chance
    assert not bool((cond[rows] == wrong).all(dim=1).any())
    assert len({tuple(r.tolist()) for r in wrong}) == len({tuple(r.tolist()) for r in cond})  # every condition used
    one = torch.zeros(10, 1, dtype=torch.long)  # a single condition: nothing can be mismatched
    rows, wrong = mismatched_pairs(one, 5, rng)
    assert rows.shape == (0,) and wrong.shape == (0, 1)


def test_a_discriminator_round_shows_real_sequences_with_wrong_conditions_as_negatives():
    real_token = [6, 7, 8]
    cond = torch.arange(K).repeat(10).unsqueeze(1)  # (30, 1)
    real = torch.tensor(real_token)[cond[:, 0]].unsqueeze(1).expand(-1, T).contiguous()
    d = RiggedD()
    settings = DRound(12, 1, 6, mismatched=12)
    discriminator_round(d, torch.optim.SGD(d.parameters(), lr=0.0), class_policy(), real, settings, streams(), cond=cond)
    pairs = [(int(tokens[i, 0]), int(c[i, 0])) for tokens, c in d.seen for i in range(len(tokens))]
    assert len(pairs) == 36  # 12 real + 12 generated + 12 mismatched
    wrong = [(tok, c) for tok, c in pairs if tok in real_token and real_token[c] != tok]
    assert len(wrong) == 12


def test_condition_accuracy_of_d_is_one_for_a_d_that_reads_c_and_half_for_one_that_does_not():
    cond = torch.arange(K).repeat(10).unsqueeze(1)  # (30, 1)
    real = torch.tensor(REWARDED)[cond[:, 0]].unsqueeze(1).expand(-1, T).contiguous()  # D(y, own c) = 1, D(y, other c) = 0
    rng = torch.Generator().manual_seed(0)
    assert discriminator_condition_accuracy(RiggedD(), real, cond, 30, rng) == 1.0

    class Blind(RiggedD):
        def forward(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
            return super().forward(tokens, torch.zeros_like(cond))

    assert discriminator_condition_accuracy(Blind(), real, cond, 30, rng) == 0.5


def train_conditional_cnn(mismatched: int, join: str = "concat") -> tuple[torch.Tensor, torch.Tensor]:
    """A conditional CNN D trained on real class-k sequences (all real_token[k]) against G's
    (all FILLER[k]); returns D(y, c) on the real sequences under their own and under another class."""
    torch.manual_seed(0)
    real_token = [6, 7, 8]
    cond = torch.arange(K).repeat(20).unsqueeze(1)  # (60, 1)
    real = torch.tensor(real_token)[cond[:, 0]].unsqueeze(1).expand(-1, T).contiguous()
    d = CNNDiscriminator(V, 8, [1, 2], [8, 8], dropout=0.0, condition=LabelEncoder([K], 4), condition_join=join)
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    rngs = streams()
    for _ in range(30):
        discriminator_round(d, opt, class_policy(), real, DRound(60, 1, 20, mismatched=mismatched), rngs, cond=cond)
    d.eval()
    return prob_real(d, real, cond=cond), prob_real(d, real, cond=(cond + 1) % K)


@pytest.mark.parametrize("join", ["concat", "projection"])
def test_a_matching_aware_discriminator_tells_a_wrong_condition_from_the_right_one(join):
    right, wrong = train_conditional_cnn(mismatched=60, join=join)
    assert float(right.min()) > 0.9 and float(wrong.max()) < 0.1


def test_a_classifier_discriminator_learns_the_class_from_real_sequences_alone():
    """AC-GAN D: no mismatched pairs, yet D(y, wrong c) is low, because its class head reads y's class."""
    right, wrong = train_conditional_cnn(mismatched=0, join="classifier")
    assert float(right.min()) > 0.9 and float(wrong.max()) < 0.1


def test_the_classifier_loss_sees_only_real_rows_with_their_labels():
    """The class head is trained on the real rows of a round, against their own labels."""
    torch.manual_seed(0)
    d = CNNDiscriminator(V, 8, [1, 2], [4, 4], dropout=0.0, condition=LabelEncoder([K], 4), condition_join="classifier")
    seen = []
    d.classifier.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    real_token = [6, 7, 8]
    cond = torch.arange(K).repeat(4).unsqueeze(1)  # (12, 1)
    real = torch.tensor(real_token)[cond[:, 0]].unsqueeze(1).expand(-1, T).contiguous()
    before = d.classifier.linear.weight.clone()
    discriminator_round(d, torch.optim.SGD(d.parameters(), lr=0.1), class_policy(), real, DRound(12, 1, 24), streams(), cond=cond)
    assert seen == [24] and not torch.equal(before, d.classifier.linear.weight)
    # the same round with every real row's class replaced gives another update: the labels are read
    d2 = copy.deepcopy(d)
    d.classifier.linear.weight.data.copy_(before)
    d2.classifier.linear.weight.data.copy_(before)
    updates = []
    for model, c in ((d, cond), (d2, (cond + 1) % K)):
        opt = torch.optim.SGD(model.classifier.parameters(), lr=0.1)
        discriminator_round(model, opt, class_policy(), real, DRound(12, 1, 24), streams(), cond=c)
        updates.append(model.classifier.linear.weight.detach() - before)
    assert not torch.allclose(updates[0], updates[1])


def test_condition_classifier_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0, 1.0, -1.0], [0.0, 0.0, 0.0, 0.0, 3.0]])  # fields of 3 and 2 classes
    cond = torch.tensor([[0, 0], [2, 1]])
    lse = math.log(math.exp(2) + 2)
    want = -((2 - lse) + (1 - math.log(math.exp(1) + math.exp(-1))) + (0 - math.log(3)) + (3 - math.log(1 + math.exp(3)))) / 2
    assert condition_classifier_loss(logits, cond, [3, 2]).item() == pytest.approx(want, rel=1e-6)
    assert (
        condition_classifier_loss(logits[:0], cond[:0], [3, 2]).item() == 0.0
    )  # Without mismatched pairs nothing teaches D that a real sequence can have the wrong condition.
    # D's loss marks its real rows rather than selecting them (no row count read back on a GPU)
    with_fake = torch.cat([logits, torch.randn(3, 5)]), torch.cat([cond, torch.tensor([[1, 0], [0, 1], [2, 0]])])
    rows = torch.tensor([True, False, False, True, False])
    picked = condition_classifier_loss(with_fake[0][rows], with_fake[1][rows], [3, 2])
    assert condition_classifier_loss(*with_fake, [3, 2], rows).item() == pytest.approx(picked.item(), rel=1e-6)
    assert condition_classifier_loss(*with_fake, [3, 2], torch.zeros(5, dtype=torch.bool)).item() == 0.0
    right, wrong = train_conditional_cnn(mismatched=0)
    assert float(wrong.mean()) > 0.5


# ----------------------------------------------------------------------------- an ignored condition is caught


def conditional_generator(kind: str = "label", step_input: bool = False, attention: bool = False) -> Generator:
    torch.manual_seed(0)
    encoder = LabelEncoder([K, 2], 4) if kind == "label" else FeatureEncoder(5, 4)
    return Generator(V, 8, 16, condition=encoder, condition_input=step_input, attention=attention, init_std=0.5)


def two_conditions(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    if kind == "label":
        return torch.tensor([[0, 1], [2, 0]]).repeat(3, 1), torch.tensor([[1, 1], [0, 0]]).repeat(3, 1)
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)


@pytest.mark.parametrize("kind", ["label", "features"])
@pytest.mark.parametrize("step_input", [False, True])
def test_generator_and_rollout_policy_read_the_condition(kind, step_input):
    g = conditional_generator(kind, step_input)
    a, b = two_conditions(kind)
    y = torch.randint(V, (6, T), generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(g.log_probs(y, cond=a), g.log_probs(y, cond=b))

    def draws(cond):
        return g.sample(6, T, torch.Generator().manual_seed(2), cond=cond)

    assert torch.equal(draws(a), draws(a)) and not torch.equal(draws(a), draws(b))

    def rollouts(cond):
        return rollout_sequences(g, y, 4, torch.Generator().manual_seed(3), chunk_rows=7, cond=cond)

    assert torch.equal(rollouts(a), rollouts(a)) and not torch.equal(rollouts(a), rollouts(b))


@pytest.mark.parametrize(("step_input", "attention"), [(False, False), (True, False), (True, True)])
def test_step_by_step_states_match_teacher_forcing(step_input, attention):
    """The rollouts' cached states hold the condition exactly as teacher forcing reads it."""
    g = conditional_generator("label", step_input, attention)
    a, _ = two_conditions("label")
    y = torch.randint(V, (6, T), generator=torch.Generator().manual_seed(1))
    _, logits = g.prefix_states(y, cond=a)
    torch.testing.assert_close(torch.stack(logits, dim=1), g(y, cond=a)[:, 1:], rtol=1e-5, atol=1e-5)


def test_step_input_alone_carries_the_condition():
    g = conditional_generator("label", step_input=True)
    with torch.no_grad():
        g.condition_map.weight.zero_()  # the initial state no longer depends on c: only the step input does
    a, b = two_conditions("label")
    y = torch.randint(V, (6, T), generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(g.log_probs(y, cond=a), g.log_probs(y, cond=b))


@pytest.mark.parametrize("join", ["concat", "projection", "classifier"])
@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_discriminator_reads_the_condition(kind, join):
    torch.manual_seed(0)
    encoder = LabelEncoder([K, 2], 4)
    if kind == "cnn":
        d = CNNDiscriminator(V, 8, [1, 2], [4, 4], condition=encoder, condition_join=join)
    else:
        d = RNNDiscriminator(V, 8, 6, condition=encoder, condition_join=join)
    d.eval()
    a, b = two_conditions("label")
    y = torch.randint(V, (6, T), generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(prob_real(d, y, cond=a), prob_real(d, y, cond=b))
    torch.testing.assert_close(prob_real(d, y, batch_size=4, cond=a), prob_real(d, y, cond=a))  # chunks keep rows' conditions


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_the_projection_term_is_the_inner_product_of_the_condition_and_the_features(kind):
    """Projection D: logits = out(h) + [0, <W e(c), h>], by hand from the modules' own parts."""
    torch.manual_seed(0)
    if kind == "cnn":
        d = CNNDiscriminator(V, 8, [1, 2], [4, 4], condition=LabelEncoder([K, 2], 4), condition_join="projection")
    else:
        d = RNNDiscriminator(V, 8, 6, condition=LabelEncoder([K, 2], 4), condition_join="projection")
    d.eval()
    a, _ = two_conditions("label")
    y = torch.randint(V, (6, T), generator=torch.Generator().manual_seed(1))
    with torch.enable_grad():  # the CNN's plain convolution path, whose features() we can read
        logits = d(y, a)
        if kind == "cnn":
            h = d.features(y, a)
        else:
            _, state = d.rnn(d.embedding(y))
            h = torch.cat(list(state), dim=1)
    e = d.condition(a)  # (6, 8)
    want_real = d.out(h)[:, 1] + torch.einsum("bc,pc,bp->b", e, d.projection.weight, h)
    torch.testing.assert_close(logits[:, 1], want_real)
    torch.testing.assert_close(logits[:, 0], d.out(h)[:, 0])
    assert d.out.in_features == h.shape[1]  # e(c) enters only through the projection
    with pytest.raises(ValueError, match="this discriminator is conditional: pass cond"):
        d(y)


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_a_classifier_d_scores_real_times_the_class_probabilities(kind):
    """Classifier D: softmax(logits)[:, 1] = P(real | y) * P(c_1 | y) * P(c_2 | y), by hand from its
    two heads; e(c) enters nowhere else (no encoder, an output layer over y's features alone)."""
    torch.manual_seed(0)
    if kind == "cnn":
        d = CNNDiscriminator(V, 8, [1, 2], [4, 4], condition=LabelEncoder([K, 2], 4), condition_join="classifier")
    else:
        d = RNNDiscriminator(V, 8, 6, condition=LabelEncoder([K, 2], 4), condition_join="classifier")
    d.eval()
    a, _ = two_conditions("label")
    y = torch.randint(V, (6, T), generator=torch.Generator().manual_seed(1))
    real, classes = d.realness_and_head(y)
    p_real = torch.softmax(real, dim=1)[:, 1]
    p_first = torch.softmax(classes[:, :K], dim=1).gather(1, a[:, :1]).squeeze(1)
    p_second = torch.softmax(classes[:, K:], dim=1).gather(1, a[:, 1:]).squeeze(1)
    torch.testing.assert_close(prob_real(d, y, cond=a), p_real * p_first * p_second)
    torch.testing.assert_close(prob_real_alone(d, y, batch_size=4), p_real)  # d_acc's score: the real/fake head
    assert d.condition is None and d.out.in_features == d.classifier.linear.in_features
    with pytest.raises(ValueError, match="this discriminator is conditional: pass cond"):
        d(y)
    with pytest.raises(ValueError, match="needs label or feature-vector conditions"):
        CNNDiscriminator(V, 8, [1], [2], condition=SourceEncoder(V, 4, 4), condition_join="classifier")


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_a_feature_matcher_d_scores_real_times_the_softmax_against_its_references(kind):
    """Features: P(c | y) = exp s(y, c) / (exp s(y, c) + sum_r exp s(y, r)), s(y, c) = (W h) . e(c),
    by hand from the heads; a reference row equal to c itself is left out of the sum."""
    torch.manual_seed(0)
    if kind == "cnn":
        d = CNNDiscriminator(V, 8, [1, 2], [4, 4], condition=FeatureEncoder(5, 4), condition_join="classifier")
    else:
        d = RNNDiscriminator(V, 8, 6, condition=FeatureEncoder(5, 4), condition_join="classifier")
    d.eval()
    a, b = two_conditions("features")
    d.classifier.set_reference(torch.cat([b, b[:3], a[:1]]).repeat(7, 1)[:63])  # a[0] is among the references
    y = torch.randint(V, (6, T), generator=torch.Generator().manual_seed(1))
    real, query = d.realness_and_head(y)
    query = query.detach()
    enc = d.classifier.encoder
    want = []
    for i in range(6):
        own = float(query[i] @ enc(a[i : i + 1])[0].detach())
        others = [float(query[i] @ enc(r[None])[0].detach()) for r in d.classifier.reference if not torch.equal(r, a[i])]
        want.append(math.exp(own) / (math.exp(own) + sum(math.exp(s) for s in others)))
    p_real = torch.softmax(real, dim=1)[:, 1]
    torch.testing.assert_close(prob_real(d, y, cond=a), p_real * torch.tensor(want))
    assert d.condition is None and d.out.in_features == d.classifier.query.in_features
    saved = copy.deepcopy(d.state_dict())  # the references travel with D's weights
    fresh = CNNDiscriminator(V, 8, [1, 2], [4, 4], condition=FeatureEncoder(5, 4), condition_join="classifier")
    if kind == "rnn":
        fresh = RNNDiscriminator(V, 8, 6, condition=FeatureEncoder(5, 4), condition_join="classifier")
    fresh.load_state_dict(saved)
    assert torch.equal(fresh.classifier.reference, d.classifier.reference)
    with pytest.raises(ValueError, match="reference conditions must be"):
        d.classifier.set_reference(b)


def test_condition_matching_loss_by_hand():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    k = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 1.0]])
    s = [[2.0, 0.0, -1.0], [0.0, 2.0, 2.0], [2.0, 1.0, 0.0]]  # q_i . k_j
    want = -sum(s[i][i] - math.log(sum(math.exp(v) for v in s[i])) for i in range(3)) / 3
    assert condition_matching_loss(q, k).item() == pytest.approx(want, rel=1e-6)
    assert condition_matching_loss(q[:0], k[:0]).item() == 0.0
    # marked real rows: the same loss as on those rows alone, generated rows' keys out of every softmax
    fake_q, fake_k = torch.tensor([[5.0, -2.0], [0.5, 3.0]]), torch.tensor([[1.0, 4.0], [-3.0, 2.0]])
    both_q, both_k = torch.cat([q[:1], fake_q[:1], q[1:], fake_q[1:]]), torch.cat([k[:1], fake_k[:1], k[1:], fake_k[1:]])
    rows = torch.tensor([True, False, True, True, False])
    assert condition_matching_loss(both_q, both_k, rows).item() == pytest.approx(want, rel=1e-6)
    none = torch.zeros(5, dtype=torch.bool)
    both_q.requires_grad_(True)
    loss = condition_matching_loss(both_q, both_k, none)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(both_q.grad, torch.zeros_like(both_q))  # finite: no NaN from empty softmaxes


def test_a_feature_matcher_d_learns_which_vector_fits_from_real_pairs_alone():
    """Real class-k sequences (all token 6 + k) come with vectors near 3 e_k; the generated ones
    (FILLER) with the same kind of vectors. No mismatched pairs, yet D(y, c) under the right
    vector beats D(y, c') under another class's vector, because the matcher reads y's class."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(K).repeat(20)  # (60,)
    vectors = 3.0 * torch.eye(K)[labels] + 0.3 * torch.randn(60, K, generator=g)  # (60, K)
    real = (6 + labels).unsqueeze(1).expand(-1, T).contiguous()
    d = CNNDiscriminator(V, 8, [1, 2], [8, 8], dropout=0.0, condition=FeatureEncoder(K, 4), condition_join="classifier")
    d.classifier.set_reference(vectors[torch.randint(60, (63,), generator=g)])
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    rngs = streams()
    policy = FeaturePolicy()
    for _ in range(40):
        discriminator_round(d, opt, policy, real, DRound(60, 1, 20), rngs, cond=vectors)
    d.eval()
    wrong = vectors[(torch.arange(60) + 20) % 60]  # row i + 20 is of class (i + 2) % 3: another class's vector
    right_p, wrong_p = prob_real(d, real, cond=vectors), prob_real(d, real, cond=wrong)
    assert float((right_p > wrong_p).float().mean()) > 0.95 and float(wrong_p.max()) < 0.2


class FeaturePolicy(nn.Module):
    """A stand-in G for feature-vector runs: emits FILLER[argmax c] at every step."""

    def sample(self, num, seq_len, rng, cond=None, **kwargs):
        return torch.tensor(FILLER)[cond.argmax(dim=1)].unsqueeze(1).expand(-1, seq_len).contiguous()

    def eval(self):
        return self


def test_missing_or_unexpected_conditions_are_errors():
    g = conditional_generator()
    y = torch.zeros(6, T, dtype=torch.long)
    with pytest.raises(ValueError, match="this generator is conditional: pass cond"):
        g.log_probs(y)
    with pytest.raises(ValueError, match="cond has 2 rows for 6 sequences"):
        g.log_probs(y, cond=torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"label conditions must be \(rows, 2\) int64"):
        g.log_probs(y, cond=torch.zeros(6, 2))
    with pytest.raises(ValueError, match="no condition input"):
        Generator(V, 8, 16).log_probs(y, cond=torch.zeros(6, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="this discriminator is conditional"):
        CNNDiscriminator(V, 8, [1], [2], condition=LabelEncoder([K], 2))(y)


# ----------------------------------------------------------------------------- the conditional oracle


def test_conditional_oracle_is_the_random_oracle_with_seeded_initial_states():
    space = oracle_space("label", K, 0)
    a = build_oracle("random", "", 50, 8, 8, 1, space=space)
    plain = build_oracle("random", "", 50, 8, 8, 1)
    for name, value in plain.state_dict().items():
        assert torch.equal(a.state_dict()[name], value), name
    assert torch.equal(a.condition_map.weight, build_oracle("random", "", 50, 8, 8, 1, space=space).condition_map.weight)
    assert not torch.equal(a.condition_map.weight, build_oracle("random", "", 50, 8, 8, 2, space=space).condition_map.weight)
    init = a.initial_state(None, K, torch.arange(K).unsqueeze(1))
    assert all(not torch.equal(init[0][:, i], init[0][:, j]) for i, j in itertools.combinations(range(K), 2))
    tokens, cond = oracle_dataset(a, 30, 5, seed=3, space=space)
    again = oracle_dataset(a, 30, 5, seed=3, space=space)
    assert torch.equal(tokens, again[0]) and torch.equal(cond, again[1]) and set(cond[:, 0].tolist()) == set(range(K))


@pytest.mark.parametrize("kind", ["label", "features"])
def test_conditional_oracle_likelihood_is_a_distribution_for_every_condition(kind):
    """sum_y p(y | c) = 1 over all V^T sequences: the scores behind NLL-oracle and the posterior are exact."""
    space = oracle_space(kind, K, 4)
    oracle = build_oracle("random", "", 4, 3, 5, 0, space=space)
    every = torch.tensor(list(itertools.product(range(4), repeat=3)))  # (64, 3)
    conds = torch.arange(K).unsqueeze(1) if kind == "label" else torch.randn(K, 4, generator=torch.Generator().manual_seed(0))
    for c in conds:
        total = sequence_log_probs(oracle, every, c.expand(len(every), -1)).exp().sum()
        assert abs(float(total) - 1.0) < 1e-4


def test_oracle_condition_scores_by_hand():
    space = oracle_space("label", K, 0)
    oracle = build_oracle("random", "", 20, 8, 8, 0, space=space)
    samples, cond = oracle_dataset(oracle, 200, 8, seed=5, space=space)
    nll, hits = oracle_condition_scores(
        oracle, samples, cond, space, pool=cond, candidates=0, rng=torch.Generator().manual_seed(0)
    )
    loglik = torch.stack([sequence_log_probs(oracle, samples, torch.full_like(cond, k)) for k in range(K)], dim=1)
    torch.testing.assert_close(nll, -loglik.gather(1, cond).squeeze(1))
    assert torch.equal(hits, loglik.argmax(dim=1) == cond[:, 0])
    assert hits.float().mean() > 0.6  # the classes are told apart far above chance (1/3) by the oracle itself


# ----------------------------------------------------------------------------- training runs


def cond_trainer(path: Path, *overrides: str) -> Trainer:
    trainer = Trainer(load_config(SMOKE, ["condition.kind=label", *overrides]), path, quiet=True)
    trainer.start(["test"])
    return trainer


def test_conditional_runs_are_deterministic_and_log_condition_accuracy(tmp_path):
    for name in ("a", "b"):
        cond_trainer(tmp_path / name).run()
    a = logged(tmp_path / "a")
    assert a == logged(tmp_path / "b")
    rows = a
    assert all(0 <= r["cond_acc"] <= 1 for r in rows if "nll_oracle" in r)
    assert all(0 <= r["d_cond_acc"] <= 1 for r in rows if "d_acc" in r) and any("d_acc" in r for r in rows)
    floor = json.loads((tmp_path / "a" / "oracle.json").read_text())
    assert floor["oracle_cond_acc"] > 0.5 and set(floor) == {"oracle_nll_test", "num_test", "oracle_cond_acc"}


def test_conditional_run_resumes_exactly(tmp_path, crash_on_third_pg_step):
    overrides = ("condition.kind=features", "discriminator.mismatched=0.5")  # the mismatched draws resume too
    cond_trainer(tmp_path / "full", *overrides).run()
    with crash_on_third_pg_step():
        cond_trainer(tmp_path / "crash", *overrides).run()
    resumed = Trainer(load_config(tmp_path / "crash" / "config.yaml"), tmp_path / "crash", quiet=True)
    resumed.resume()
    resumed.run()
    assert logged(tmp_path / "crash") == logged(tmp_path / "full")


@pytest.mark.parametrize(
    ("kind", "join"), [("label", "concat"), ("label", "projection"), ("label", "classifier"), ("features", "classifier")]
)
def test_every_conditional_parameter_is_trained(tmp_path, kind, join):
    t = cond_trainer(tmp_path, f"condition.kind={kind}", "condition.step_input=true", f"discriminator.condition_join={join}")
    g_before = {k: v.clone() for k, v in t.generator.named_parameters()}
    d_before = {k: v.clone() for k, v in t.algorithm.discriminator.named_parameters()}
    t.run()
    for before, model in ((g_before, t.generator), (d_before, t.algorithm.discriminator)):
        for name, value in model.named_parameters():
            assert not torch.equal(before[name], value), f"{name} did not change"
    if kind == "features":  # the matcher's reference vectors are rows of the training conditions
        ref, train = t.algorithm.discriminator.classifier.reference, t.data.cond_train
        assert all(bool((train == r).all(dim=1).any()) for r in ref)


# ----------------------------------------------------------------------------- bad inputs


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


RECORDS = [{"text": f"a {w} sat on the {v} mat", "animal": w, "size": v} for w in ("cat", "dog") for v in ("big", "old")] * 6
SMALL_TEXT = """
    data.max_len=10 data.heldout_size=4 pretrain.epochs=2 pretrain.batch_size=4 d_pretrain.steps=1
    d_pretrain.num_negatives=8 adversarial.epochs=2 adversarial.batch_size=4 adversarial.num_negatives=8
    adversarial.rollout_num=2 discriminator.batch_size=4 eval.every=1 eval.d_samples=4 eval.bleu_samples=4
    eval.final_samples=4 generator.embed_dim=8 generator.hidden_dim=8 discriminator.embed_dim=8
    discriminator.filter_sizes=[1,2,3] discriminator.num_filters=[4,4,4] checkpoint.every=1
""".split()


def text_config(train: Path, *overrides: str) -> list[str]:
    return [f"data.train={train}", "condition.kind=label", "condition.label_fields=[animal,size]", *SMALL_TEXT, *overrides]


def text_trainer(tmp_path: Path, train: Path, *overrides: str) -> Trainer:
    return Trainer(load_config(ROOT / "configs" / "text.yaml", text_config(train, *overrides)), tmp_path / "run", quiet=True)


BAD_LABELS = [
    (
        {"text": "a b", "animal": "cat"},
        r"train\.jsonl:3: no label field 'size'; every line needs the label fields \['animal', 'size'\]",
    ),
    (
        {"text": "a b", "animal": "cat", "size": [1]},
        r"train\.jsonl:3: label 'size' is list \(\[1\]\); use a string or an integer",
    ),
    ({"text": "a b", "animal": "cat", "size": None}, r"train\.jsonl:3: label 'size' is NoneType"),
]


@pytest.mark.parametrize(("record", "message"), BAD_LABELS)
def test_a_bad_label_names_the_line(tmp_path, record, message):
    train = write_jsonl(tmp_path / "train.jsonl", [RECORDS[0], RECORDS[1], record])
    with pytest.raises(CorpusError, match=message):
        text_trainer(tmp_path, train)


def test_a_label_the_training_file_lacks_names_the_line(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", RECORDS)
    test = write_jsonl(tmp_path / "test.jsonl", [RECORDS[0], {**RECORDS[1], "size": "tiny"}])
    with pytest.raises(
        CorpusError, match=r"test\.jsonl:2: label size='tiny' does not occur in the training file .*known values: big, old"
    ):
        text_trainer(tmp_path, train, f"data.test={test}")


def feature_config(train: Path, features: Path, *overrides: str) -> list[str]:
    return [f"data.train={train}", "condition.kind=features", f"condition.features={features}", *SMALL_TEXT, *overrides]


def feature_trainer(tmp_path: Path, train: Path, features: Path, *overrides: str) -> Trainer:
    cfg = load_config(ROOT / "configs" / "text.yaml", feature_config(train, features, *overrides))
    return Trainer(cfg, tmp_path / "run", quiet=True)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            np.zeros((23, 3)),
            r"f\.npy has 23 rows for the 24 sequences \(non-blank lines\) of .*train\.jsonl: .*train\.jsonl:25 has no row",
        ),
        (
            np.zeros((25, 3)),
            r"f\.npy has 25 rows for the 24 sequences .* the last at line 25: rows 24 and after have no sequence",
        ),
        (np.zeros(24), r"f\.npy: features must be a 2-D numeric array \(rows, feature_dim\), got shape \(24,\)"),
        (
            np.where(np.arange(72).reshape(24, 3) == 31, np.nan, 0.0),
            r"f\.npy: row 10 \(.*train\.jsonl:12\) holds NaN or infinity",
        ),
    ],
)
def test_a_bad_features_file_names_the_file_and_line(tmp_path, rows, message):
    train = write_jsonl(tmp_path / "train.jsonl", [{"text": "x y"}, *RECORDS])  # line 1 blank below: sequences are lines 2..25
    train.write_text("\n" + train.read_text().split("\n", 1)[1], encoding="utf-8")
    np.save(tmp_path / "f.npy", rows)
    with pytest.raises(CorpusError, match=message):
        feature_trainer(tmp_path, train, tmp_path / "f.npy")


def test_features_of_another_width_for_the_test_file_are_an_error(tmp_path):
    from safetensors.numpy import save_file

    train = write_jsonl(tmp_path / "train.jsonl", RECORDS)
    test = write_jsonl(tmp_path / "test.jsonl", RECORDS[:5])
    save_file({"features": np.zeros((24, 3), dtype=np.float32)}, tmp_path / "f.safetensors")
    np.save(tmp_path / "t.npy", np.zeros((5, 4)))
    overrides = (f"data.test={test}", f"condition.test_features={tmp_path / 't.npy'}")
    with pytest.raises(CorpusError, match=r"t\.npy: rows of 4 values, but the training features have 3"):
        feature_trainer(tmp_path, train, tmp_path / "f.safetensors", *overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["condition.num_classes=3"], "condition.num_classes does not apply to condition.kind='none'"),
        (["condition.kind=label", "condition.feature_dim=3"], "condition.feature_dim does not apply to condition.kind='label'"),
        (["condition.kind=label", "condition.label_fields=[a]"], "condition.label_fields does not apply to data.source='oracle'"),
        (["condition.kind=colour"], "use 'none', 'label', 'features' or 'source'"),
        (
            ["discriminator.mismatched=1"],
            "discriminator.mismatched pairs real sequences with wrong conditions: it needs condition.kind",
        ),
        (["condition.kind=label", "discriminator.mismatched=-1"], "discriminator.mismatched must be >= 0"),
        (["discriminator.condition_join=projection"], "discriminator.condition_join applies only to conditional runs"),
        (["condition.kind=label", "discriminator.condition_join=dot"], "use 'concat', 'projection' or 'classifier'"),
        (["condition.kind=source", "discriminator.condition_join=classifier"], "it needs condition.kind=label or features"),
        (
            ["condition.kind=label", "discriminator.condition_join=classifier", "discriminator.mismatched=1"],
            "set discriminator.mismatched=0",
        ),
        (["condition.kind=label", "condition.num_classes=1"], "num_classes must be >= 2"),
        (["condition.kind=label", "data.oracle=paper"], "the paper's oracle has no condition"),
        (
            ["data.source=text", "data.train=a.txt", "condition.kind=label", "condition.label_fields=[g]"],
            "labels are read from JSON Lines",
        ),
        (["data.source=text", "data.train=a.jsonl", "condition.kind=label"], "needs condition.label_fields"),
        (["data.source=text", "data.train=a.jsonl", "condition.kind=features"], "needs condition.features"),
        (
            [
                "data.source=text",
                "data.train=a.jsonl",
                "data.test=b.jsonl",
                "condition.kind=features",
                "condition.features=f.npy",
            ],
            "condition.test_features gives the feature rows of data.test: set both or neither",
        ),
    ],
)
def test_bad_condition_settings_say_how_to_fix_them(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_condition_arguments_are_checked():
    space = ConditionSpace("label", ("animal", "size"), (("cat", "dog"), ("big", "old")))
    pool = torch.tensor([[0, 1], [1, 0]])
    assert space.parse(["size=old", "animal=dog"], pool).tolist() == [[1, 1]]
    assert space.parse(["row=1"], pool).tolist() == [[1, 0]]
    for specs, message in [
        (["animal=cow", "size=big"], "unknown label; known values of 'animal': cat, dog"),
        (["animal=cat"], r"give each label field once \(animal, size\)"),
        (["row=2"], "use a row of the held-out set, 0 to 1"),
        (["animal"], "write --condition animal=cat --condition size=big"),
    ]:
        with pytest.raises(ConfigError, match=message):
            space.parse(specs, pool)
    with pytest.raises(ConfigError, match="choose one by row=INDEX"):
        ConditionSpace("features", feature_dim=3).parse(["animal=cat"], torch.zeros(2, 3))


# ----------------------------------------------------------------------------- the command line


def test_cli_trains_samples_for_a_condition_and_evaluates_per_condition(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(SMOKE), "--out", str(run), "--quiet", "condition.kind=label", "adversarial.epochs=2"]) == 0
    assert (run / "conditions.json").is_file()
    lines = (run / "samples.txt").read_text().splitlines()
    assert len(lines) == 10 and all(line.split("\t")[0] in {f"class={k}" for k in range(4)} for line in lines)
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3", "--condition", "class=2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all(len(line.split()) == 10 for line in out)
    for decoding in ([], ["--top-p", "0.9"], ["--beam", "2", "-n", "1"]):  # a prompt under a condition
        assert (
            main(["sample", str(run), "-n", "3", "--condition", "class=2", "--prefix", "3 17", *decoding, "--format", "jsonl"])
            == 0
        )
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert rows and all(r["ids"][:2] == [3, 17] and r["condition"] == "class=2" and r["prefix"] == "3 17" for r in rows)
        opened = open_run(run)
        cond, _ = parse_condition(opened, ["class=2"])
        tokens = torch.tensor([r["ids"] for r in rows])
        with torch.no_grad():
            given = opened.generator.log_probs(tokens, cond=cond.expand(len(rows), *cond.shape[1:]))[:, 2:].sum(dim=1)
            other = opened.generator.log_probs(tokens, cond=torch.zeros_like(cond).expand(len(rows), *cond.shape[1:]))
        assert [r["logprob"] for r in rows] == pytest.approx(given.tolist(), rel=1e-5)
        assert not torch.allclose(given, other[:, 2:].sum(dim=1))  # the score is G's under class 2, not another class
    assert main(["sample", str(run), "-n", "3", "--condition", "class=7"]) == 2
    assert "unknown label; known values of 'class': 0, 1, 2, 3" in capsys.readouterr().err
    assert main(["evaluate", str(run), "-n", "200"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["cond_acc"] <= 1 and sorted(result["per_condition"]) == [f"class={k}" for k in range(4)]
    per = result["per_condition"]["class=2"]
    assert set(per) == {"num_samples", "nll_oracle", "cond_acc", "num_test", "nll_test"}
    assert sum(p["num_samples"] for p in result["per_condition"].values()) == 200
    assert sum(p["num_test"] for p in result["per_condition"].values()) == result["num_test"]
    assert math.isclose(
        sum(p["cond_acc"] * p["num_samples"] for p in result["per_condition"].values()) / 200, result["cond_acc"], rel_tol=1e-6
    )
    assert main(["evaluate", str(run), "-n", "200", "--discriminator"]) == 0  # adds D's figures, changes nothing else
    with_d = json.loads(capsys.readouterr().out)
    assert 0 <= with_d.pop("d_acc") <= 1 and 0 <= with_d.pop("d_cond_acc") <= 1
    assert with_d == result

    plain = tmp_path / "plain"
    assert main(["train", str(SMOKE), "--out", str(plain), "--quiet", "adversarial.epochs=0", "d_pretrain.steps=0"]) == 0
    capsys.readouterr()
    assert main(["sample", str(plain), "--condition", "class=1"]) == 2
    assert "unconditional run" in capsys.readouterr().err


def test_cli_on_labelled_and_featured_text(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", RECORDS)
    run = tmp_path / "run"
    assert main(["train", str(ROOT / "configs" / "text.yaml"), "--out", str(run), "--quiet", *text_config(train)]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "2", "--condition", "animal=dog", "--condition", "size=big"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["evaluate", str(run), "-n", "8"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "bleu4_test" in result and set(result["per_condition"]) <= {
        f"animal={a},size={s}" for a in ("cat", "dog") for s in ("big", "old")
    }

    np.save(tmp_path / "f.npy", np.random.default_rng(0).normal(size=(24, 3)))
    frun = tmp_path / "frun"
    args = feature_config(train, tmp_path / "f.npy")
    assert main(["train", str(ROOT / "configs" / "text.yaml"), "--out", str(frun), "--quiet", *args]) == 0
    capsys.readouterr()
    assert main(["sample", str(frun), "-n", "2", "--condition", "row=1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
