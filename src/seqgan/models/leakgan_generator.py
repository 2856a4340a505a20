"""LeakGAN's hierarchical generator (Guo et al., AAAI 2018).

At step t (t tokens generated so far) the MANAGER, an LSTM, reads f_t, the CNN discriminator's
feature vector of the prefix y_1..y_t padded to the full length T (the leaked information:
`CNNDiscriminator.prefix_features`), and emits a unit goal g_t = normalise(W_g h^M_t + b) of D's
feature size F. The last `horizon` (c) goals are summed (`pool_goals`) and
projected, w_t = normalise(psi(sum g)) (goal_size k; psi linear without bias; the unit norm
follows the official code). The WORKER, an LSTM over token embeddings, emits O_t = W_O h^W_t + b_O
viewed as (V, k), and the next token's logits are O_t w_t.

The logits are computed without the (V, k) matrix: O_t w_t = W'[w_t (x) h_t; w_t] with W' the
output layer's weight and bias rearranged to (V, k (H + 1)) (`_mixed`), which is also what the
fused output-layer NLL reads, so teacher-forced log-probs never hold (B, T, V, k).

G holds D (`discriminator`, a registered submodule: G's checkpoint carries the features it reads,
so a reopened run samples as trained). D's weights are not G's parameters to train: the algorithm
optimises `worker_parameters()` and `manager_parameters()`, and features are read without
gradients (the official code trains D's feature extractor by D's loss only). The worker's
logits read the goals detached: the worker's losses train the worker and psi, the manager's
losses train the manager, as the official code's two parameter lists do.

A `Generator` to everything that reads one (sampling, rollouts, beam search, NLL): the state is
(h^W, c^W, h^M, c^M, the last c goals (c, R, F), the prefix so far (T, R) with -1 where nothing
is generated yet, the tokens fed so far (1, R)), every entry with its rows in dimension 1.
It has no noise or condition input, and draws at most T tokens (`max_len`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seqgan.models.discriminator import CNNDiscriminator
from seqgan.models.fused_head import linear_token_nll
from seqgan.models.generator import Generator, State


def pool_goals(goals: torch.Tensor, horizon: int) -> torch.Tensor:
    """goals (B, T, F), g_0..g_{T-1} -> pooled (B, T, F): [.., t, :] = sum of g_{t-c+1}..g_t (fewer
    at t < c - 1; goals before g_0 are zero).

    The paper's goal embedding sums g_{t-c}..g_{t-1}; we include g_t, the goal read off the current prefix's
    features, so that the very first token already follows a goal (the paper's sum is empty at
    t = 0; the official code uses a learned initial goal there)."""
    total = goals.cumsum(dim=1)  # (B, T, F)
    earlier = F.pad(total[:, :-horizon], (0, 0, horizon, 0)) if horizon < goals.shape[1] else torch.zeros_like(total)
    return total - earlier


class LeakGANGenerator(Generator):
    def __init__(
        self,
        discriminator: CNNDiscriminator,
        vocab_size: int,
        seq_len: int,
        *,
        embed_dim: int = 32,
        hidden_dim: int = 32,
        manager_hidden: int = 32,
        goal_size: int = 16,
        horizon: int = 4,
        start_token: int = 0,
        init_std: float = 0.1,
        eos_token: int | None = None,
        pad_token: int = 0,
    ) -> None:
        nn.Module.__init__(self)
        self.vocab_size, self.cell, self.start_token, self.eos_token, self.pad_token = (
            vocab_size,
            "leakgan",
            start_token,
            eos_token,
            pad_token,
        )
        self.num_layers, self.noise_dim, self.attention = 1, 0, False
        self.condition, self.condition_input, self.source_attention = None, False, False
        self.parts = self.memory_at = self.cache_at = 7
        self.max_len, self.hidden_dim, self.goal_size, self.horizon = seq_len, hidden_dim, goal_size, horizon
        self.discriminator = discriminator
        self.feature_dim = discriminator.highway.gate.out_features  # F: D's features = the goals' size
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.worker = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, vocab_size * goal_size)  # O_t, viewed (V, k)
        self.goal_map = nn.Linear(self.feature_dim, goal_size, bias=False)  # psi
        self.manager = nn.LSTM(self.feature_dim, manager_hidden, batch_first=True)
        self.goal_out = nn.Linear(manager_hidden, self.feature_dim)
        if init_std > 0:  # the official code draws every G weight from N(0, 0.1^2)
            for p in self.worker_parameters() + self.manager_parameters():
                nn.init.normal_(p, 0.0, init_std)

    # ------------------------------------------------------------------ parameters

    def worker_parameters(self) -> list[nn.Parameter]:
        """The WORKER's: embedding, LSTM, output layer and psi (the official code's worker_params)."""
        return [*self.embedding.parameters(), *self.worker.parameters(), *self.head.parameters(), self.goal_map.weight]

    def manager_parameters(self) -> list[nn.Parameter]:
        """The MANAGER's: its LSTM and goal layer (never D's features)."""
        return [*self.manager.parameters(), *self.goal_out.parameters()]

    # ------------------------------------------------------------------ the leak

    @torch.no_grad()
    def leaked_features(self, prefixes: torch.Tensor) -> torch.Tensor:
        """D's features of prefixes (B, T) padded with -1 -> (B, F), without gradients."""
        return self.discriminator.prefix_features(prefixes)

    def teacher_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """f_0..f_T of every prefix of tokens (B, T) -> (B, T + 1, F), one D pass over B (T + 1) rows."""
        B, T = tokens.shape
        keep = torch.arange(T, device=tokens.device)[None, :] < torch.arange(T + 1, device=tokens.device)[:, None]  # (T+1, T)
        prefixes = torch.where(keep, tokens[:, None, :], torch.full_like(tokens[:, None, :], -1))  # (B, T+1, T)
        return self.leaked_features(prefixes.reshape(B * (T + 1), T)).view(B, T + 1, -1)

    def goals(self, features: torch.Tensor) -> torch.Tensor:
        """The MANAGER's unit goals g_0..g_{T-1} from f_0..f_{T-1}: features (B, T, F) -> (B, T, F)."""
        out, _ = self.manager(features)
        return F.normalize(self.goal_out(out), dim=-1)

    # ------------------------------------------------------------------ the worker's logits

    def _mixed(self) -> torch.Tensor:
        """The output layer as (V, k (H + 1)): row v = [W_O[v, :, :] flattened; b_O[v, :]]."""
        V, k, H = self.vocab_size, self.goal_size, self.hidden_dim
        return torch.cat([self.head.weight.view(V, k * H), self.head.bias.view(V, k)], dim=1)

    def _mix_input(self, hidden: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """hidden (..., H), pooled goals (..., F) -> [w (x) h; w] (..., k (H + 1)), w = normalise(psi(pooled))."""
        w = F.normalize(self.goal_map(pooled), dim=-1)  # (..., k)
        return torch.cat([(w.unsqueeze(-1) * hidden.unsqueeze(-2)).flatten(-2), w], dim=-1)

    # ------------------------------------------------------------------ teacher forcing

    def teacher_forced(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One teacher-forced pass over tokens (B, T): (the output layer's input (B, T, k (H + 1)),
        features f_0..f_T (B, T + 1, F), goals g_0..g_{T-1} (B, T, F), with gradients to the manager)."""
        features = self.teacher_features(tokens)
        goals = self.goals(features[:, :-1])
        out, _ = self.worker(self.embedding(self._inputs(tokens)))  # (B, T, H)
        return self._mix_input(out, pool_goals(goals.detach(), self.horizon)), features, goals

    def hidden(self, tokens: torch.Tensor, noise: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        self.initial_state(noise, tokens.shape[0], cond)  # refuses noise and conditions
        return self.teacher_forced(tokens)[0]

    def forward(self, tokens: torch.Tensor, noise: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits: tokens (B, T) -> (B, T, V)."""
        return self.hidden(tokens, noise, cond) @ self._mixed().T

    def token_head(
        self, tokens: torch.Tensor, noise: torch.Tensor | None = None, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The worker's mixed output and the goal-mixed output layer (no bias)."""
        return self.hidden(tokens, noise, cond), *self.output_layer()

    def output_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The goal-mixed output layer's weight (V, k (H + 1)) (O's bias is among its columns) and a zero bias (V,)."""
        weight = self._mixed()
        return weight, weight.new_zeros(self.vocab_size)

    def log_probs(
        self, tokens: torch.Tensor, temperature: float = 1.0, noise: torch.Tensor | None = None, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log G(y_t | y_<t): tokens (B, T) -> (B, T), through the fused output-layer NLL."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        return self.mixed_log_probs(self.hidden(tokens, noise, cond), tokens, temperature)

    def mixed_log_probs(self, mixed: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """log-probs (B, T) of tokens (B, T) from the output layer's input (B, T, k (H + 1)) of `teacher_forced`."""
        weight = self._mixed() / temperature
        return -linear_token_nll(mixed, weight, weight.new_zeros(self.vocab_size), tokens)

    # ------------------------------------------------------------------ step by step

    def initial_state(self, noise: torch.Tensor | None, rows: int, cond: torch.Tensor | None = None) -> State:
        if noise is not None or cond is not None:
            raise ValueError("LeakGAN's generator has no noise or condition input; pass None")
        w = self.head.weight
        worker = w.new_zeros(1, rows, self.hidden_dim)
        manager = w.new_zeros(1, rows, self.manager.hidden_size)
        goals = w.new_zeros(self.horizon, rows, self.feature_dim)
        prefix = torch.full((self.max_len, rows), -1, dtype=torch.long, device=w.device)
        fed = torch.zeros(1, rows, dtype=torch.long, device=w.device)
        return (worker, worker, manager, manager, goals, prefix, fed)

    def step_features(self, token: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """Feed one token per row (the start token first): token (R,) -> (the goal-mixed output
        layer's input (R, k (H + 1)), state); `step` gives its logits through `output_layer`.

        A row's token after the start token joins its prefix (at its own position: rows of a rollout
        have prefixes of different lengths); then D's features of the prefix, a manager step, the
        pooled goal and a worker step give the next token's logits."""
        h_w, c_w, h_m, c_m, goals, prefix, fed = state if state is not None else self.initial_state(None, len(token))
        rows = torch.arange(len(token), device=token.device)
        at = (fed[0] - 1).clamp(min=0)  # (R,): where the token goes (nowhere for the start token)
        prefix = prefix.clone()
        prefix[at, rows] = torch.where(fed[0] > 0, token, prefix[at, rows])
        features = self.leaked_features(prefix.T)  # (R, F): f_t
        out_m, (h_m, c_m) = self.manager(features.unsqueeze(1), (h_m, c_m))
        goal = F.normalize(self.goal_out(out_m.squeeze(1)), dim=-1)  # (R, F): g_t
        goals = torch.cat([goals[1:], goal.unsqueeze(0)])  # the last c goals, g_t last
        out_w, (h_w, c_w) = self.worker(self.embedding(token).unsqueeze(1), (h_w, c_w))
        mixed = self._mix_input(out_w.squeeze(1), goals.sum(dim=0))  # (R, k (H + 1))
        return mixed, (h_w, c_w, h_m, c_m, goals, prefix, fed + 1)

    def sample(self, num: int, seq_len: int, generator: torch.Generator, **kwargs):
        """`Generator.sample`, for at most `max_len` tokens (D's features read prefixes padded to it)."""
        if seq_len > self.max_len:
            raise ValueError(f"LeakGAN's generator draws at most {self.max_len} tokens, asked for {seq_len}")
        return super().sample(num, seq_len, generator, **kwargs)
