"""The generator G of SeqGAN: a recurrent language model over token ids (Yu et al., 2017, Sec. 4).

y_1 is predicted from a start token (id `start_token`, whose embedding is the first input, as in
the paper's code); every later step reads the previous token. The same class is the synthetic
oracle (a frozen LSTM, see `seqgan.models.oracle`) and the rollout policy (a delayed copy of G).

Recurrent state is a tuple of tensors, each (num_layers, rows, hidden): (h, c) for an LSTM, (h,)
for a GRU, so rollouts can index rows of any cell the same way.

Sequences of varying length (text) end with `eos_token`; every later position holds `pad_token`.
`mask` marks the positions that count (up to and including the first end token); with
`eos_token=None` (the oracle: exactly T tokens) every position counts.

Noise input (`noise_dim` > 0): a latent z ~ N(0, I) per sequence, drawn from the sampler's
`torch.Generator`, sets the initial recurrent state of every layer (h and, for an LSTM, c) as
tanh(W z + b). A sequence's probability then depends on its z, so every method that reads tokens
takes an optional `noise` (rows, noise_dim):
- `sample(..., return_noise=True)` returns the z of each sampled row, and the policy gradient
  (log-probs of the samples) and the rollouts (`prefix_states`) continue each row with ITS z;
- MLE pre-training draws a fresh z per real sequence (the data has none), so G learns the
  distribution it will be sampled from;
- without `noise` (NLL-test, NLL of real data) z = 0, the prior's mean and mode: deterministic,
  free of sampling noise, and the z at which G is most typical. It is a point estimate, not the
  marginal likelihood log E_z p(Y | z), which would need many z per sequence.
With `noise_dim` = 0 no z is drawn and the initial state is zero, exactly as without the option.

Condition input (`condition`, an encoder of `seqgan.models.condition`): the conditional SeqGAN's
G learns p(y | c). Each sequence's raw condition c (rows, ...) is encoded to a vector e(c) that
sets the initial state, tanh(W_c e(c) + b_c), added to the noise term W z + b inside the tanh
when both are present. With `condition_input=True` e(c) is also joined to every step's input
(the RNN reads [embedding; e(c)]); it then travels in the state as one more entry (1, R, C), so
rollouts continue each row with its own condition with no further bookkeeping. Every method that
reads or draws tokens takes `cond` (rows, ...); a conditional G refuses to run without it.

Source attention (`source_attention=True`, with a `SourceEncoder`: the seq2seq condition): at
step t the top-layer output o_t attends over the encoder's outputs m_1..m_S of the row's source
(Luong et al., 2015, "general" score o_t^T W_a m_s, one head, padding masked out), and the
read-out is joined to the output layer's input: [o_t; (a_t); r_t]. The memory (S, R, M) and its
mask (S, R) ride in the state after e(c) (and before an attention cache), so rollouts continue
each row attending to its own source.

Self-attention read-out (`attention=True`): at step t the top-layer output o_t attends (one head,
scaled dot product) to o_0..o_t, the outputs of every step so far, and the read-out a_t is joined
to it: the output layer reads [o_t; a_t] (2H). In step-by-step use the past outputs travel in the
state as two more entries, a cache (S, R, H) and its validity (S, R, 1) (1 where filled), so
`prefix_states` hands rollouts everything a continuation needs, and rows with prefixes of
different lengths share one tensor.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from seqgan import runtime
from seqgan.data.corpus import token_mask
from seqgan.models.condition import source_attention
from seqgan.models.fused_head import linear_token_nll, weighted_token_nll
from seqgan.models.sampling import Base2Logits, base2_columns, pick_tokens, sample_base2

M = TypeVar("M", bound=nn.Module)
SAMPLE_ROWS_CPU, SAMPLE_ROWS_GPU = 1000, 16384  # rows per sampling chunk by default

State = tuple[torch.Tensor, ...]


class TiedHead(nn.Module):
    """ScratchGAN's output layer, tied to G's input embedding (its code's `LSTMGen`): the output o (H)
    is projected to the embedding size and scored against every token's input vector,
    logits = (o P^T) E^T + b, with E (V, E) the input table, P (E, H) and b (V,) its own."""

    def __init__(self, in_dim: int, embed_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.project = nn.Linear(in_dim, embed_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def weight_with(self, table: torch.Tensor) -> torch.Tensor:
        """The output weight (V, H) it makes with the input table (V, E): E P."""
        return table @ self.project.weight


class Generator(nn.Module):
    max_len: int | None = None
    """The longest sequence this G can draw, or None (any): LeakGAN's G reads D's features of the
    prefix padded to the run's length, so it draws at most that many tokens."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        *,
        num_layers: int = 1,
        cell: str = "lstm",
        start_token: int = 0,
        init_std: float = 0.1,
        eos_token: int | None = None,
        pad_token: int = 0,
        noise_dim: int = 0,
        attention: bool = False,
        condition: nn.Module | None = None,
        condition_input: bool = False,
        source_attention: bool = False,
        tie_embeddings: bool = False,
    ) -> None:
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        self.vocab_size = vocab_size
        self.cell = cell
        self.start_token = start_token
        self.eos_token = eos_token
        self.pad_token = pad_token
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.noise_dim = noise_dim
        self.attention = attention
        if condition_input and condition is None:
            raise ValueError("condition_input=True needs a condition encoder")
        self.condition_input = condition_input
        if source_attention and not hasattr(condition, "memory_dim"):
            raise ValueError("source_attention=True needs a condition encoder with a memory (a SourceEncoder)")
        self.source_attention = source_attention
        self.parts = 2 if cell == "lstm" else 1  # recurrent entries of the state: (h, c) or (h,)
        self.memory_at = self.parts + int(condition_input)  # where a source memory and its mask sit in the state
        self.cache_at = self.memory_at + 2 * int(source_attention)  # where an attention cache starts in the state
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        rnn_input = embed_dim + (condition.dim if condition_input else 0)
        self.rnn = rnn(rnn_input, hidden_dim, num_layers=num_layers, batch_first=True)
        if attention:  # query, key and value maps of the self-attention over past outputs
            self.attn = nn.Linear(hidden_dim, 3 * hidden_dim)
        read_dim = condition.memory_dim if source_attention else 0
        out_dim = hidden_dim * (2 if attention else 1) + read_dim
        self.head = TiedHead(out_dim, embed_dim, vocab_size) if tie_embeddings else nn.Linear(out_dim, vocab_size)
        if noise_dim > 0:  # z -> the initial state of every layer: h (and c for an LSTM)
            self.noise_map = nn.Linear(noise_dim, self.parts * num_layers * hidden_dim)
        self.condition = condition
        if condition is not None:  # e(c) -> the initial state of every layer, as z above
            self.condition_map = nn.Linear(condition.dim, self.parts * num_layers * hidden_dim)
        if source_attention:  # W_a of the score o^T W_a m
            self.source_query = nn.Linear(hidden_dim, condition.memory_dim, bias=False)
        if init_std > 0:  # the paper's code draws every weight and bias from N(0, 0.1^2)
            for p in self.parameters():
                nn.init.normal_(p, 0.0, init_std)

    # ------------------------------------------------------------------ variable length

    def mask(self, tokens: torch.Tensor) -> torch.Tensor | None:
        """(B, T) bool: True up to and including the first end token; None when there is no end token."""
        return None if self.eos_token is None else token_mask(tokens, self.eos_token)

    def finish(self, token: torch.Tensor, done: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """After a row has emitted the end token it emits padding: token (R,), done (R,) bool."""
        if self.eos_token is None:
            return token, None
        if done is not None:
            token = torch.where(done, torch.full_like(token, self.pad_token), token)
            done = done | (token == self.eos_token)
        else:
            done = token == self.eos_token
        return token, done

    # ------------------------------------------------------------------ noise input

    def draw_noise(self, rows: int, generator: torch.Generator) -> torch.Tensor | None:
        """z ~ N(0, I): (rows, noise_dim) on G's device, or None (nothing drawn) without a noise input.
        Drawn on the random stream's own device (a CPU stream gives a CUDA run the CPU run's noise)."""
        if self.noise_dim == 0:
            return None
        z = torch.randn(rows, self.noise_dim, generator=generator, device=generator.device)
        return runtime.to_device(z, self.head.bias.device)

    def initial_state(self, noise: torch.Tensor | None, rows: int, cond: torch.Tensor | None = None) -> State | None:
        """The recurrent state before the start token: None (zeros) without noise or condition
        input, else tanh(W z + b [+ W_c e(c) + b_c]) split into layers; noise (rows, noise_dim) or
        None for z = 0; cond (rows, ...) each row's condition (required exactly when G is conditional).
        With `condition_input` the state then holds e(c) as (1, rows, C), and with source attention
        the source memory (S, rows, M) and its mask (S, rows)."""
        if self.noise_dim == 0 and noise is not None:
            raise ValueError("this generator has no noise input (noise_dim=0); pass noise=None")
        if (self.condition is None) != (cond is None):
            raise ValueError(
                "this generator is conditional: pass cond (rows, ...), each sequence's condition"
                if cond is None
                else "this generator has no condition input; pass cond=None"
            )
        if self.noise_dim == 0 and cond is None:
            return None
        pre = None
        if self.noise_dim > 0:
            if noise is None:
                noise = self.head.bias.new_zeros(rows, self.noise_dim)
            pre = self.noise_map(noise)
        encoded = memory = None
        if cond is not None:
            if len(cond) != rows:
                raise ValueError(f"cond has {len(cond)} rows for {rows} sequences; give one condition per sequence")
            if self.source_attention:
                encoded, memory, mask = self.condition.encode(cond)  # (rows, C), (rows, S, M), (rows, S)
            else:
                encoded = self.condition(cond)  # (rows, C)
            pre = self.condition_map(encoded) if pre is None else pre + self.condition_map(encoded)
        init = torch.tanh(pre).view(rows, self.parts, self.num_layers, self.hidden_dim)
        state = tuple(init[:, i].transpose(0, 1).contiguous() for i in range(self.parts))  # each (L, rows, H)
        if self.condition_input:
            state = (*state, encoded.unsqueeze(0))
        if memory is not None:
            state = (*state, memory.transpose(0, 1), mask.T)
        return state

    @staticmethod
    def _rnn_state(state: State | None, cell: str):
        if state is None:
            return None
        return (state[0], state[1]) if cell == "lstm" else state[0]

    # ------------------------------------------------------------------ self-attention read-out

    def _attend(self, out: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: out (B, T, H) -> [out; causal self-attention read-out] (B, T, 2H)."""
        q, k, v = self.attn(out).chunk(3, dim=-1)  # each (B, T, H)
        scores = q @ k.transpose(1, 2) / self.hidden_dim**0.5  # (B, T, T): row t scores o_0..o_{T-1}
        future = torch.ones(out.shape[1], out.shape[1], dtype=torch.bool, device=out.device).triu(1)
        weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
        return torch.cat([out, weights @ v], dim=-1)

    def _attend_step(self, o: torch.Tensor, state: State | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step: o (R, H), the state before it -> (features (R, 2H), cache, valid) with o added.

        Each row writes o into the first free slot of its cache; the cache grows by one slot every
        step (a new tensor: earlier states, e.g. those kept for rollouts, are never modified)."""
        R, H = o.shape
        if state is None or len(state) == self.cache_at:  # the first step (an initial state has no cache yet)
            cache, valid = o.new_zeros(0, R, H), o.new_zeros(0, R, 1)
        else:
            cache, valid = state[self.cache_at], state[self.cache_at + 1]
        cache = torch.cat([cache, o.new_zeros(1, R, H)])  # (S, R, H)
        valid = torch.cat([valid, o.new_zeros(1, R, 1)])  # (S, R, 1)
        slot = valid.sum(dim=0).squeeze(1).long()  # (R,): filled slots so far = the first free one
        rows = torch.arange(R, device=o.device)
        cache[slot, rows] = o
        valid[slot, rows] = 1.0
        q = o @ self.attn.weight[:H].T + self.attn.bias[:H]  # (R, H)
        k, v = (cache @ self.attn.weight[H:].T + self.attn.bias[H:]).chunk(2, dim=-1)  # each (S, R, H)
        scores = (k * q).sum(dim=-1) / H**0.5  # (S, R)
        weights = torch.softmax(scores.masked_fill(valid.squeeze(2) == 0, float("-inf")), dim=0)
        return torch.cat([o, (weights.unsqueeze(2) * v).sum(dim=0)], dim=-1), cache, valid

    # ------------------------------------------------------------------ teacher forcing

    def _inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) targets -> (B, T) inputs: the start token, then y_1..y_{T-1}."""
        start = torch.full_like(tokens[:, :1], self.start_token)
        return torch.cat([start, tokens[:, :-1]], dim=1)

    def hidden(self, tokens: torch.Tensor, noise: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced input of the output layer: tokens (B, T) -> (B, T, H), row t reading y_<t
        (B, T, 2H with the attention read-out; + M with the source read-out).

        noise (B, noise_dim): each row's z (None: z = 0; see the module docstring); cond (B, ...):
        each row's condition, for a conditional G."""
        state = self.initial_state(noise, tokens.shape[0], cond)
        x = self.embedding(self._inputs(tokens))  # (B, T, E)
        if self.condition_input:  # [embedding; e(c)] at every step
            x = torch.cat([x, state[self.parts].transpose(0, 1).expand(-1, x.shape[1], -1)], dim=2)
        init = self._rnn_state(state, self.cell)
        out, _ = self.rnn(x) if init is None else self.rnn(x, init)
        features = self._attend(out) if self.attention else out
        if self.source_attention:  # [features; read-out of the source memory] (B, T, ... + M)
            features = torch.cat([features, self._read_source(out, state)], dim=-1)
        return features

    def _read_source(self, out: torch.Tensor, state: State) -> torch.Tensor:
        """out (R, T, H), G's top-layer outputs -> the read-out (R, T, M) of each row's source memory in `state`."""
        memory, mask = state[self.memory_at].transpose(0, 1), state[self.memory_at + 1].T  # (R, S, M), (R, S)
        return source_attention(self.source_query(out), memory, mask)[0]

    def forward(self, tokens: torch.Tensor, noise: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits: tokens (B, T) -> (B, T, V), row t predicting tokens[:, t]."""
        return F.linear(self.hidden(tokens, noise, cond), *self.output_layer())

    def output_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The output layer's weight (V, H) and bias (V,); tied (`TiedHead`): W = E P from the input table E."""
        if isinstance(self.head, TiedHead):
            return self.head.weight_with(self.embedding.weight), self.head.bias
        return self.head.weight, self.head.bias

    def log_probs(
        self, tokens: torch.Tensor, temperature: float = 1.0, noise: torch.Tensor | None = None, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log G(y_t | y_1..y_{t-1}) for every position: tokens (B, T) -> (B, T).

        Under a temperature the logits are divided by it, which is the same as dividing the output
        layer's weight and bias. Uses the fused output layer + NLL, which never holds all
        (B, T, V) logits at once."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        h, weight, bias = self.token_head(tokens, noise, cond)
        if temperature != 1.0:
            weight, bias = weight / temperature, bias / temperature
        return -linear_token_nll(h, weight, bias, tokens)

    def token_head(
        self, tokens: torch.Tensor, noise: torch.Tensor | None = None, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What the fused output layer reads for teacher-forced tokens (B, T): the features
        (B, T, H'), and the output layer's weight (V, H') and bias (V,)."""
        return self.hidden(tokens, noise, cond), *self.output_layer()

    def nll_loss(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """MLE's loss: the mean NLL of tokens (B, T) over the valid positions (mask (B, T) bool,
        None: all), -masked_mean(log_probs(tokens), mask) to round-off, with the output layer's
        gradients taken in its forward pass (`weighted_token_nll`, no (B T, V) block kept)."""
        weights = (
            torch.full(tokens.shape, 1.0 / tokens.numel(), device=tokens.device)
            if mask is None
            else mask / mask.sum().clamp(min=1)
        )
        return weighted_token_nll(*self.token_head(tokens, noise, cond), tokens, weights)

    # ------------------------------------------------------------------ step by step

    def step(self, token: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """Feed one token per row: token (R,), state -> (logits (R, V) for the next token, state)."""
        features, new_state = self.step_features(token, state)
        return F.linear(features, *self.output_layer()), new_state

    def sampling_step(self, temperature: float = 1.0) -> Callable[[torch.Tensor, State | None], tuple[Base2Logits, State]]:
        """`step` for the sampling loops (rollouts, `sample`), without gradients: (token, state) ->
        (the next token's logits in base 2 at `temperature`, logits x log2 e / temperature (R, V),
        with the product they come from, for `sample_base2`; state). The output layer is scaled
        once, with its bias as one more column against a column of ones, so a step is one product
        and no pass over the (R, V) logits but the sampler's: a paper G step's rollouts took 2.32 s
        against 2.61 s with `step` and the scaling apart (1 thread, `bench/sampling_exp.py
        --g-step`, medians of 5)."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        columns = base2_columns(*self.output_layer(), temperature)  # (H' + 1, V)

        def step(token: torch.Tensor, state: State | None) -> tuple[Base2Logits, State]:
            features, new_state = self.step_features(token, state)
            inputs = torch.cat([features, features.new_ones(len(features), 1)], dim=1)  # (R, H' + 1)
            return Base2Logits(torch.mm(inputs, columns), inputs, columns), new_state

        return step

    def step_features(self, token: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """Feed one token per row: token (R,), state -> (the output layer's input (R, H'), state)."""
        x = self.embedding(token).unsqueeze(1)  # (R, 1, E)
        if self.condition_input:
            x = torch.cat([x, state[self.parts].transpose(0, 1)], dim=2)  # (R, 1, E + C)
        if self.cell == "lstm":
            out, (h, c) = self.rnn(x, self._rnn_state(state, "lstm"))
            new_state: State = (h, c)
        else:
            out, h = self.rnn(x, self._rnn_state(state, "gru"))
            new_state = (h,)
        if self.condition_input:
            new_state = (*new_state, state[self.parts])
        if self.source_attention:
            new_state = (*new_state, state[self.memory_at], state[self.memory_at + 1])
        if self.attention:
            features, cache, valid = self._attend_step(out.squeeze(1), state)
            new_state = (*new_state, cache, valid)
        else:
            features = out.squeeze(1)
        if self.source_attention:
            features = torch.cat([features, self._read_source(out, state).squeeze(1)], dim=-1)
        return features, new_state

    def prefix_states(
        self, tokens: torch.Tensor, noise: torch.Tensor | None = None, cond: torch.Tensor | None = None
    ) -> tuple[list[State], list[torch.Tensor]]:
        """Recurrent states after each prefix, for rollouts.

        tokens (B, T), noise (B, noise_dim): each sequence's z, as `sample` returned it; cond
        (B, ...): each sequence's condition (the states then hold it for the rollouts). Returns,
        for t = 1..T-1, the state after reading start, y_1..y_t and the logits (B, V) it gives for
        y_{t+1}: the point from which a rollout of prefix length t continues. Attention caches are
        padded (unfilled slots) to one length, so the states of all prefixes stack.
        """
        start = torch.full_like(tokens[:, 0], self.start_token)
        _, state = self.step(start, self.initial_state(noise, tokens.shape[0], cond))
        states, logits = [], []
        for t in range(tokens.shape[1] - 1):
            step_logits, state = self.step(tokens[:, t], state)
            states.append(state)
            logits.append(step_logits)
        if self.attention:
            at = self.cache_at
            size = states[-1][at].shape[0] if states else 0
            states = [(*s[:at], *(F.pad(x, (0, 0, 0, 0, 0, size - x.shape[0])) for x in s[at:])) for s in states]
        return states, logits

    def _sampler(
        self, temperature: float, top_k: int | None, top_p: float | None
    ) -> tuple[
        Callable[[torch.Tensor, State | None], tuple[torch.Tensor | Base2Logits, State]],
        Callable[[torch.Tensor | Base2Logits, torch.Generator], torch.Tensor],
    ]:
        """`sample`'s step and draw: (token, state) -> (logits, state) and (logits, rng) -> tokens. The
        plain draw at a temperature > 0 reads `sampling_step`'s base-2 logits (`sample_base2`); greedy
        and truncated draws read `step`'s (`pick_tokens`)."""
        if temperature > 0 and top_k is None and top_p is None:
            return self.sampling_step(temperature), sample_base2
        return self.step, lambda logits, rng: pick_tokens(logits, rng, temperature, top_k, top_p)

    @torch.no_grad()
    def sample(
        self,
        num: int,
        seq_len: int,
        generator: torch.Generator,
        *,
        temperature: float = 1.0,
        batch_size: int | None = None,
        return_noise: bool = False,
        cond: torch.Tensor | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        prefix: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Draw `num` sequences of `seq_len` tokens: (num, seq_len) int64, `batch_size` rows at a time
        (None: 1,000 on the CPU, where a chunk's logits then stay in cache; 16,384 on a GPU, where
        fewer, larger steps keep it busy).

        temperature > 0 scales the logits; temperature == 0 decodes greedily. top_k / top_p
        truncate the distribution after the temperature (`seqgan.models.truncation`). With an end
        token, a row pads after emitting it. With a noise input each row draws its z first (per
        chunk, from `generator`); `return_noise` also returns them: (num, noise_dim), or None without.
        A conditional G samples row i for the condition cond[i] (cond: (num, ...)).
        prefix (num, P): row i starts with the tokens prefix[i, :] that are >= 0 (a shorter prompt
        ends in -1s) and continues from there; no random number is drawn while every row is forced.
        """
        if cond is not None and len(cond) != num:
            raise ValueError(f"cond has {len(cond)} rows for {num} sequences; give one condition per sequence")
        if prefix is not None and (len(prefix) != num or prefix.shape[1] > seq_len):
            raise ValueError(f"prefix {tuple(prefix.shape)}: give one row per sequence, at most seq_len={seq_len} long")
        device = self.head.bias.device
        batch_size = batch_size or (SAMPLE_ROWS_CPU if device.type == "cpu" else SAMPLE_ROWS_GPU)
        step, pick = self._sampler(temperature, top_k, top_p)
        chunks, noises = [], []
        for begin in range(0, num, batch_size):
            rows = min(batch_size, num - begin)
            token = torch.full((rows,), self.start_token, dtype=torch.long, device=device)
            noise = self.draw_noise(rows, generator)
            noises.append(noise)
            state, done = self.initial_state(noise, rows, None if cond is None else cond[begin : begin + rows]), None
            out = torch.empty(rows, seq_len, dtype=torch.long, device=device)
            forced = None if prefix is None else prefix[begin : begin + rows].to(device)  # (rows, P)
            every_row = [] if forced is None else (forced >= 0).all(dim=0).tolist()  # [t]: all rows forced at t
            for t in range(seq_len):
                logits, state = step(token, state)
                if t < len(every_row) and every_row[t]:
                    token = forced[:, t]
                else:
                    token = pick(logits, generator)
                    if t < len(every_row):
                        token = torch.where(forced[:, t] >= 0, forced[:, t], token)
                token, done = self.finish(token, done)
                out[:, t] = token
            chunks.append(out)
        tokens = torch.cat(chunks) if chunks else torch.empty(0, seq_len, dtype=torch.long, device=device)
        if not return_noise:
            return tokens
        if self.noise_dim == 0:
            return tokens, None
        return tokens, torch.cat(noises) if noises else torch.empty(0, self.noise_dim, device=device)


def flatten_rnns(model: nn.Module) -> nn.Module:
    """Put each recurrent layer's weights back into one contiguous chunk, as cuDNN wants them
    (a deep copy on a GPU leaves them scattered: cuDNN then warns and copies them on every call).
    A no-op on the CPU. Returns `model`."""
    for module in model.modules():
        if isinstance(module, nn.RNNBase):
            module.flatten_parameters()
    return model


def frozen_copy(model: M) -> M:
    """A copy of `model` that takes no gradients (the rollout policy, a KL reference, a best model)."""
    return flatten_rnns(copy.deepcopy(model).requires_grad_(False))
