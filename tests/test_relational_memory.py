"""The relational memory core and RelGAN's generator (`seqgan.models.relational_memory`)."""

from __future__ import annotations

import math

import pytest
import torch

from seqgan.algorithms.build import build_generator
from seqgan.config import ConfigError, GeneratorConfig, load_config
from seqgan.models.relational_memory import RelationalGenerator, RelationalMemory, slot_attention


def test_slot_attention_by_hand_one_head():
    # two slots, key size 1, value size 1: slot rows [q, k, v]
    qkv = torch.tensor([[[1.0, 0.0, 2.0], [2.0, math.log(3.0), 4.0]]])  # (1, 2, 3)
    out = slot_attention(qkv, heads=1, key_size=1)
    # slot 0: softmax([1 * 0, 1 * ln 3]) = [1/4, 3/4] -> 2/4 + 12/4; slot 1: softmax([0, 2 ln 3]) = [1/10, 9/10]
    torch.testing.assert_close(out, torch.tensor([[[3.5], [0.2 + 3.6]]]))


def test_slot_attention_by_hand_two_heads_keep_their_own_slices():
    head1 = torch.tensor([[1.0, 0.0, 2.0], [2.0, math.log(3.0), 4.0]])
    head2 = torch.tensor([[0.0, 5.0, -1.0], [0.0, 7.0, 1.0]])  # zero queries: uniform weights, the mean value 0
    out = slot_attention(torch.cat([head1, head2], dim=1).unsqueeze(0), heads=2, key_size=1)
    torch.testing.assert_close(out, torch.tensor([[[3.5, 0.0], [3.8, 0.0]]]))


def test_the_scale_is_one_over_the_root_of_the_key_size():
    # key size 4: q . k = 4 * ln 3 -> scaled 2 ln 3 -> weights [1/10, 9/10] on values [0, 10]
    q, k = torch.full((4,), math.log(3.0) ** 0.5), torch.full((4,), math.log(3.0) ** 0.5)
    slot0 = torch.cat([q, torch.zeros(4), torch.tensor([0.0])])
    slot1 = torch.cat([torch.zeros(4), k, torch.tensor([10.0])])
    out = slot_attention(torch.stack([slot0, slot1]).unsqueeze(0), heads=1, key_size=4)
    assert out[0, 0, 0].item() == pytest.approx(9.0, rel=1e-5)


def test_attention_over_slots_is_permutation_equivariant_and_mixes_the_slots():
    torch.manual_seed(0)
    core = RelationalMemory(input_size=3, mem_slots=4, num_heads=2, head_size=3)
    memory = torch.randn(2, 4, 6)
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(core.attend(memory[:, perm]), core.attend(memory)[:, perm])
    other = memory.clone()
    other[:, 3] += 1.0  # slot 0's update reads slot 3 through the attention
    assert not torch.allclose(core.attend(other)[:, 0], core.attend(memory)[:, 0])


def test_the_core_step_gates_the_attended_memory():
    torch.manual_seed(0)
    core = RelationalMemory(input_size=3, mem_slots=2, num_heads=1, head_size=4)
    x, memory = torch.randn(5, 3), core.initial_memory(5, torch.device("cpu"))
    assert torch.equal(memory[0], torch.eye(2, 4))
    out, new = core(x, memory)
    inp = core.input_projector(x).unsqueeze(1)
    attended = core.attend(torch.cat([memory, inp], dim=1))[:, :2]
    i, f = (core.memory_gate(torch.tanh(memory)) + core.input_gate(inp)).chunk(2, dim=-1)
    torch.testing.assert_close(new, torch.sigmoid(i) * torch.tanh(attended) + torch.sigmoid(f + 1.0) * memory)
    assert out.shape == (5, 8) and torch.equal(out, new.reshape(5, 8))


def test_the_generator_steps_as_it_teacher_forces():
    torch.manual_seed(0)
    g = RelationalGenerator(11, 6, mem_slots=2, num_heads=2, head_size=4, init_std=0.3)
    tokens = torch.randint(0, 11, (3, 5))
    forced = g(tokens)  # (B, T, V)
    state = g.initial_state(None, 3)
    token = torch.zeros(3, dtype=torch.long)
    for t in range(5):
        logits, state = g.step(token, state)
        torch.testing.assert_close(logits, forced[:, t])
        token = tokens[:, t]
    samples = g.sample(4, 5, torch.Generator().manual_seed(1))
    assert samples.shape == (4, 5)
    loss = -g.log_probs(tokens).mean()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())


def test_generator_config_builds_the_relational_generator_and_rejects_rnn_settings():
    g = build_generator(GeneratorConfig(cell="rmc", embed_dim=8, mem_slots=2, num_heads=2, head_size=4), 20)
    assert isinstance(g, RelationalGenerator) and g.hidden_dim == 16
    with pytest.raises(ConfigError, match="generator.hidden_dim does not apply to generator.cell=rmc"):
        GeneratorConfig(cell="rmc", hidden_dim=64)
    with pytest.raises(ConfigError, match="generator.head_size does not apply to generator.cell=lstm"):
        GeneratorConfig(head_size=64)
    with pytest.raises(ConfigError, match="generator.cell=rmc has no condition input"):
        load_config(None, ["generator.cell=rmc", "condition.kind=label"])
