"""The relational memory core (Santoro et al., NeurIPS 2018) and RelGAN's generator built on it
(Nie et al., ICLR 2019, Sec. 2.1).

The memory is N slots of size M = heads * head_size. At each step the input x_t (a token's
embedding) is projected to one more slot, and multi-head dot-product attention runs over the
N + 1 rows [memory; x_t] (`slot_attention`: every slot reads every slot and the input), followed
by a residual MLP, each with layer norm, as in DeepMind's Sonnet `RelationalMemory`. The attended
slots then pass LSTM-like gates (per unit): M_{t+1} = sigmoid(i) * tanh(attended) + sigmoid(f) *
M_t, the gates computed from x_t and tanh(M_t). The output of the step is M_{t+1} flattened
(N * M), which G's output layer reads.

Choices where sources differ: the post-attention MLP applies ReLU between its layers, not after
the last (Sonnet's `MLP`; TextGAN-PyTorch's port applies it after every layer and shares one
weight between the layers); the gate biases (forget 1, input 0) are constants as in Sonnet; the
layer norm of the projected queries, keys and values normalises each slot's vector (Sonnet).
"""

from __future__ import annotations

import torch
from torch import nn

from seqgan.models.generator import Generator, State


def slot_attention(qkv: torch.Tensor, heads: int, key_size: int) -> torch.Tensor:
    """Multi-head scaled dot-product attention of every slot over every slot.

    qkv (R, S, heads * (2 * key_size + value_size)): each slot's queries, keys and values, head by
    head ([q_h; k_h; v_h] for h = 1..heads). Returns (R, S, heads * value_size): slot s of head h
    reads sum_j softmax_j(q_s . k_j / sqrt(key_size)) v_j, heads side by side."""
    R, S, width = qkv.shape
    per_head = width // heads
    q, k, v = qkv.view(R, S, heads, per_head).transpose(1, 2).split([key_size, key_size, per_head - 2 * key_size], dim=-1)
    weights = torch.softmax(q @ k.transpose(-1, -2) * key_size**-0.5, dim=-1)  # (R, H, S, S)
    return (weights @ v).transpose(1, 2).reshape(R, S, -1)


class RelationalMemory(nn.Module):
    """One relational memory core: (input (R, I), memory (R, N, M)) -> (output (R, N * M), memory)."""

    def __init__(
        self,
        input_size: int,
        mem_slots: int,
        num_heads: int,
        head_size: int,
        *,
        num_blocks: int = 1,
        mlp_layers: int = 2,
        forget_bias: float = 1.0,
        input_bias: float = 0.0,
    ) -> None:
        super().__init__()
        self.mem_slots, self.num_heads, self.head_size, self.num_blocks = mem_slots, num_heads, head_size, num_blocks
        self.mem_size = num_heads * head_size
        self.forget_bias, self.input_bias = forget_bias, input_bias
        self.input_projector = nn.Linear(input_size, self.mem_size)
        self.qkv = nn.Linear(self.mem_size, num_heads * 3 * head_size)  # key size = value size = head_size
        self.qkv_norm = nn.LayerNorm(num_heads * 3 * head_size)
        self.mlp = nn.ModuleList(nn.Linear(self.mem_size, self.mem_size) for _ in range(mlp_layers))
        self.attention_norm = nn.LayerNorm(self.mem_size)
        self.mlp_norm = nn.LayerNorm(self.mem_size)
        self.input_gate = nn.Linear(self.mem_size, 2 * self.mem_size)
        self.memory_gate = nn.Linear(self.mem_size, 2 * self.mem_size)

    @property
    def output_size(self) -> int:
        return self.mem_slots * self.mem_size

    def initial_memory(self, rows: int, device: torch.device) -> torch.Tensor:
        """(rows, N, M): slot i starts as the i-th unit vector (truncated or zero-padded to M), so the slots differ."""
        eye = torch.eye(self.mem_slots, max(self.mem_slots, self.mem_size), device=device)[:, : self.mem_size]
        return eye.unsqueeze(0).expand(rows, -1, -1)

    def attend(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (R, S, M) -> (R, S, M): attention over the slots, then the MLP, each residual with layer norm."""
        for _ in range(self.num_blocks):
            attended = slot_attention(self.qkv_norm(self.qkv(memory)), self.num_heads, self.head_size)
            memory = self.attention_norm(memory + attended)
            h = memory
            for i, layer in enumerate(self.mlp):
                h = layer(h) if i == len(self.mlp) - 1 else torch.relu(layer(h))
            memory = self.mlp_norm(memory + h)
        return memory

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inp = self.input_projector(x).unsqueeze(1)  # (R, 1, M): the input as one more slot
        attended = self.attend(torch.cat([memory, inp], dim=1))[:, :-1]  # (R, N, M): the input's row dropped
        gates = self.memory_gate(torch.tanh(memory)) + self.input_gate(inp)  # (R, N, 2M)
        i, f = gates.chunk(2, dim=-1)
        memory = torch.sigmoid(i + self.input_bias) * torch.tanh(attended) + torch.sigmoid(f + self.forget_bias) * memory
        return memory.reshape(len(memory), -1), memory


class RelationalGenerator(Generator):
    """RelGAN's G: token embedding -> relational memory core -> output layer over the vocabulary.

    A `Generator` to everything that reads one (sampling, NLL, MLE, rollouts): the state is one
    tensor, the memory with rows on dim 1, (N, R, M), as an RNN's (layers, R, H). It has no noise
    or condition input. init_std > 0 draws every linear and embedding weight from N(0, init_std^2)
    with zero biases (layer norms keep scale 1, shift 0); 0 keeps PyTorch's initialisation."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        *,
        mem_slots: int = 1,
        num_heads: int = 2,
        head_size: int = 256,
        start_token: int = 0,
        init_std: float = 0.1,
        eos_token: int | None = None,
        pad_token: int = 0,
    ) -> None:
        nn.Module.__init__(self)
        self.vocab_size, self.cell, self.start_token, self.eos_token, self.pad_token = (
            vocab_size,
            "rmc",
            start_token,
            eos_token,
            pad_token,
        )
        self.num_layers, self.noise_dim, self.attention = 1, 0, False
        self.condition, self.condition_input, self.source_attention = None, False, False
        self.parts = self.memory_at = self.cache_at = 1
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.core = RelationalMemory(embed_dim, mem_slots, num_heads, head_size)
        self.hidden_dim = self.core.output_size
        self.head = nn.Linear(self.hidden_dim, vocab_size)
        if init_std > 0:
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(module.weight, 0.0, init_std)
                if isinstance(module, nn.Linear):
                    nn.init.zeros_(module.bias)

    def initial_state(self, noise: torch.Tensor | None, rows: int, cond: torch.Tensor | None = None) -> State:
        if noise is not None or cond is not None:
            raise ValueError("the relational-memory generator has no noise or condition input; pass None")
        return (self.core.initial_memory(rows, self.head.weight.device).transpose(0, 1),)  # (N, R, M)

    def hidden(self, tokens: torch.Tensor, noise: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: tokens (B, T) -> the output layer's inputs (B, T, N * M), row t reading y_<t."""
        memory = self.initial_state(noise, tokens.shape[0], cond)[0].transpose(0, 1)  # (B, N, M)
        x = self.embedding(self._inputs(tokens))  # (B, T, E)
        outputs = []
        for t in range(tokens.shape[1]):
            out, memory = self.core(x[:, t], memory)
            outputs.append(out)
        return torch.stack(outputs, dim=1)

    def step_features(self, token: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """One memory step: token (R,), state -> (the output layer's input (R, N * M), state)."""
        memory = (state if state is not None else self.initial_state(None, len(token)))[0].transpose(0, 1)  # (R, N, M)
        out, memory = self.core(self.embedding(token), memory)
        return out, (memory.transpose(0, 1),)
