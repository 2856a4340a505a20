"""Beam search over a generator's sequences, with length normalisation as in Hugging Face's `generate()`.

Every prompt keeps `width` hypotheses. At each step each hypothesis is extended by every token,
and the `width` extensions of highest total log-probability survive (one top-k over width x V
candidates per prompt). A hypothesis that has emitted the end token goes on with padding at no
cost, so finished and running hypotheses compete in the same beam. At the end the hypotheses are
ranked by log-probability / length ** length_penalty (length: generated tokens, the end token
included; 0 ranks by the raw log-probability; with a fixed length, as the oracle's, it changes
nothing). Prompt tokens are forced: they cost nothing and do not count in the length.

The search starts with one live hypothesis per prompt (the others at -inf), so width 1 is greedy
decoding, and a width of V ** T keeps every sequence to the end: an exhaustive search.
With a noise input the search reads z = 0 (the prior's mode). Every state entry of the generator
holds its rows in dimension 1, so one `index_select` reorders a beam.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from seqgan.models.generator import Generator


@torch.no_grad()
def beam_search(
    generator: Generator,
    width: int,
    seq_len: int,
    *,
    prefix: torch.Tensor | None = None,
    cond: torch.Tensor | None = None,
    num_prompts: int = 1,
    length_penalty: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The `width` best sequences of each prompt, best first, and their normalised scores.

    prefix (B, P): each prompt's forced tokens (-1 after a shorter prompt's end), or None with
    `num_prompts` = B empty prompts; cond (B, ...): each prompt's condition for a conditional G.
    Returns tokens (B, width, seq_len) and scores (B, width) (normalised log-probabilities).
    """
    if width < 1:
        raise ValueError(f"beam width must be >= 1, got {width}")
    B = num_prompts if prefix is None else len(prefix)
    W, V, device = width, generator.vocab_size, generator.head.bias.device
    state = generator.initial_state(None, B, cond)
    token = torch.full((B,), generator.start_token, dtype=torch.long, device=device)
    logits, state = generator.step(token, state)
    rows = torch.arange(B, device=device).repeat_interleave(W)  # (B W,): beam rows of each prompt, prompt-major
    logits, state = logits[rows], tuple(s.index_select(1, rows) for s in state)
    forced = None if prefix is None else prefix.to(device)[rows]  # (B W, P)
    scores = torch.full((B, W), float("-inf"), device=device)
    scores[:, 0] = 0.0
    out = torch.full((B * W, seq_len), generator.pad_token, dtype=torch.long, device=device)
    done = torch.zeros(B * W, dtype=torch.bool, device=device)
    length = torch.zeros(B * W, device=device)
    for t in range(seq_len):
        logp = step_log_probs(logits, done, generator.pad_token, None if forced is None or t >= forced.shape[1] else forced[:, t])
        top, index = (scores.reshape(B * W, 1) + logp).view(B, W * V).topk(W, dim=1)  # (B, W): best extensions
        source = (torch.arange(B, device=device).unsqueeze(1) * W + index // V).view(-1)  # (B W,) the beam row extended
        token = (index % V).view(-1)
        free = forced is None or t >= forced.shape[1]
        free_rows = torch.ones_like(done) if free else forced[source, t] < 0
        out, done = out[source], done[source]
        length = length[source] + (free_rows & ~done).float()
        out[:, t] = token
        if generator.eos_token is not None:
            done = done | (token == generator.eos_token)
        scores = top
        if t < seq_len - 1:
            logits, state = generator.step(token, tuple(s.index_select(1, source) for s in state))
    normalised = scores / length.view(B, W).clamp(min=1) ** length_penalty if length_penalty else scores
    order = normalised.argsort(dim=1, descending=True, stable=True)  # (B, W)
    tokens = out.view(B, W, seq_len).gather(1, order.unsqueeze(2).expand(-1, -1, seq_len))
    return tokens, normalised.gather(1, order)


def step_log_probs(logits: torch.Tensor, done: torch.Tensor, pad: int, forced: torch.Tensor | None) -> torch.Tensor:
    """The log-probability of every next token of each beam row: logits (R, V), done (R,) bool,
    forced (R,) prompt tokens (-1 where a row is free) -> (R, V). A finished row may only pad
    and a forced row only take its prompt token, each at log-probability 0."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    only = torch.where(done, pad, -1) if forced is None else torch.where(forced >= 0, forced, torch.where(done, pad, -1))
    fixed = only >= 0  # (R,)
    if bool(fixed.any()):
        one = torch.full_like(logp[fixed], float("-inf")).scatter_(1, only[fixed].unsqueeze(1), 0.0)
        logp[fixed] = one
    return logp
