"""Decoding a run's generator as text generators are used: prompts, sampling choices, scores.

- `Decoding`: how each token is chosen, as Hugging Face's `generate()` takes it: sampling at a
  temperature, then top-k, then top-p (`seqgan.models.truncation`); greedy; or beam search with
  length normalisation (`seqgan.models.beam`). Combinations that would silently do nothing are
  refused with a one-line `ConfigError`.
- Prompts: a text run's prompt is tokenised by the run's tokenizer (unknown words become <unk>,
  and a note says so); an oracle run's prompt is token ids. Every sample starts with its prompt.
- `Generated`: the sequences with, for each, the generator's log-probability of the tokens it
  generated (the prompt excluded; teacher-forced at temperature 1, untruncated: the model's own
  probability, whatever the decoding), their number and mean NLL, and with a discriminator its
  probability that the sequence is real.
Plain sampling (no prompt, no truncation) draws exactly what `seqgan.generation.sample_for_data`
draws with the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from seqgan.data.dataset import Data
from seqgan.data.tokenizers import UNK
from seqgan.errors import ConfigError
from seqgan.generation import Samples, conditions_for, format_samples
from seqgan.models.beam import beam_search
from seqgan.models.discriminator import prob_real
from seqgan.models.generator import Generator


@dataclass(frozen=True)
class Decoding:
    """How tokens are chosen; checked on creation."""

    temperature: float = 1.0
    """Divides the logits before any truncation (sampling only); > 0."""
    top_k: int | None = None
    """Keep the k most probable tokens (>= 1; 1 is greedy); None keeps all."""
    top_p: float | None = None
    """Keep the nucleus of mass p, in (0, 1] (1 keeps all); None keeps all."""
    greedy: bool = False
    """The most probable token at every step."""
    beam: int | None = None
    """Beam search of this width (>= 1; 1 is greedy); None samples."""
    length_penalty: float = 1.0
    """Beam search ranks by log-probability / length ** length_penalty (0: the raw log-probability)."""

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ConfigError(
                f"temperature must be > 0, got {self.temperature} (for the most probable tokens use greedy decoding)"
            )
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top-k must be >= 1, got {self.top_k} (1 is greedy); leave it out to keep every token")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"top-p must be in (0, 1], got {self.top_p} (1 keeps every token)")
        if self.beam is not None and self.beam < 1:
            raise ConfigError(f"the beam width must be >= 1, got {self.beam} (1 is greedy)")
        if self.greedy and self.beam is not None:
            raise ConfigError("greedy and beam: choose one (a beam of width 1 is greedy)")
        if (self.greedy or self.beam is not None) and (self.temperature != 1.0 or self.truncated):
            raise ConfigError(
                "temperature, top-k and top-p shape sampling; greedy and beam search pick the most probable tokens: drop them"
            )
        if not self.length_penalty >= 0 or (self.length_penalty != 1.0 and self.beam is None):
            raise ConfigError(f"length penalty {self.length_penalty}: give a value >= 0, and only with beam search")

    @property
    def truncated(self) -> bool:
        return self.top_k is not None or self.top_p is not None


def encode_prompt(data: Data, prompt: str) -> tuple[list[int], str | None]:
    """A prompt -> its token ids and a note for the user (unknown words), or None. Text runs: the
    run's tokenizer; oracle runs: ids separated by spaces or commas."""
    if not prompt.strip():
        raise ConfigError("empty prefix: give words to continue (token ids for an oracle run), or leave the prefix out")
    if data.text is None:
        try:
            ids = [int(x) for x in prompt.replace(",", " ").split()]
        except ValueError:
            raise ConfigError(f"prefix {prompt!r}: an oracle run's prefix is token ids, e.g. '3 17 42'") from None
        bad = [i for i in ids if not 0 <= i < data.vocab_size]
        if bad:
            raise ConfigError(f"prefix {prompt!r}: ids {bad} are outside the vocabulary 0..{data.vocab_size - 1}")
        return ids, None
    tokenizer = data.text.tokenizer
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ConfigError(f"prefix {prompt!r} holds no token of this run's tokenizer; give words to continue")
    unknown = ids.count(UNK)
    if not unknown:
        return ids, None
    shown = tokenizer.decode(ids)
    return ids, f"prefix {prompt!r} reads as {shown!r}: {unknown} token(s) are not in the run's vocabulary and become <unk>"


def prompt_rows(prompts: list[list[int]], each: int) -> torch.Tensor:
    """Prompts' ids -> (len(prompts) * each, longest) int64, prompt i in rows i*each..(i+1)*each-1,
    -1 after a shorter prompt's end (`Generator.sample`'s `prefix`)."""
    width = max(len(p) for p in prompts)
    out = torch.full((len(prompts), width), -1, dtype=torch.long)
    for i, ids in enumerate(prompts):
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out.repeat_interleave(each, dim=0)


@torch.no_grad()
def generated_log_probs(
    generator: Generator,
    tokens: torch.Tensor,
    start: torch.Tensor,
    noise: torch.Tensor | None = None,
    cond: torch.Tensor | None = None,
    batch_size: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced log G of the generated part of each sequence: tokens (R, L), start (R,) the
    prompt lengths -> (sum of log-probabilities (R,), generated tokens counted (R,)). A sequence
    counts up to and including its end token; noise (R, noise_dim) and cond (R, ...) as sampled."""
    total, count = [], []
    for i in range(0, len(tokens), batch_size):
        chunk = tokens[i : i + batch_size]
        logp = generator.log_probs(
            chunk,
            noise=None if noise is None else noise[i : i + batch_size],
            cond=None if cond is None else cond[i : i + batch_size],
        )  # (r, L)
        counted = torch.arange(chunk.shape[1], device=chunk.device) >= start[i : i + batch_size, None]  # (r, L)
        mask = generator.mask(chunk)
        if mask is not None:
            counted = counted & mask
        total.append((logp * counted).sum(dim=1))
        count.append(counted.sum(dim=1))
    return torch.cat(total), torch.cat(count)


@dataclass
class Generated:
    """Sequences of G (prompts included) and their scores; rows are prompt-major (prompt i's samples together)."""

    samples: Samples  # tokens (R, L), the conditions and held-out rows they were drawn for
    prompts: list[str]  # (R) the prompt each row continues, as given ("" for none)
    logprob: torch.Tensor  # (R,) log G of the generated tokens
    num_tokens: torch.Tensor  # (R,) generated tokens (the end token included)
    texts: list[str]  # (R) decoded text, or the ids separated by spaces for an oracle run
    d_score: torch.Tensor | None = None  # (R,) D's probability of "real"
    notes: list[str] = field(default_factory=list)  # for the user: unknown prompt words

    @property
    def tokens(self) -> torch.Tensor:
        return self.samples.tokens

    @property
    def nll(self) -> torch.Tensor:
        """(R,) mean NLL per generated token."""
        return -self.logprob / self.num_tokens.clamp(min=1)

    def records(self, data: Data, condition: str | None = None) -> list[dict[str, Any]]:
        """One JSON-ready object per sequence; `condition`: the name of a condition given to all."""
        names = self.samples.names(data) or [condition] * len(self.texts)
        key = "ids" if data.text is None else "text"
        rows = []
        for i, text in enumerate(self.texts):
            row = {key: self.tokens[i].tolist() if data.text is None else text, "prefix": self.prompts[i] or None}
            row |= {"condition": names[i], "logprob": float(self.logprob[i]), "nll": float(self.nll[i])}
            row["num_tokens"] = int(self.num_tokens[i])
            if self.d_score is not None:
                row["d_score"] = float(self.d_score[i])
            rows.append(row)
        return rows


def generate_for_data(
    generator: Generator,
    data: Data,
    decoding: Decoding,
    n: int,
    rng: torch.Generator,
    *,
    prompts: list[str] | None = None,
    cond: torch.Tensor | None = None,
    max_len: int | None = None,
    batch_size: int = 1000,
    discriminator: nn.Module | None = None,
) -> Generated:
    """`n` sequences of G per prompt (or `n` from the start token without prompts) of `max_len`
    tokens (default: the data's length), for the condition `cond` (1, ...) or, in a conditional
    run without one, for conditions of held-out rows; D (eval mode) scores them when given."""
    length = max_len or data.length
    if generator.max_len is not None and length > generator.max_len:
        raise ConfigError(f"max-len {length}: this run's generator draws at most {generator.max_len} tokens")
    encoded = [encode_prompt(data, text) for text in prompts or []]
    longest = max((len(ids) for ids, _ in encoded), default=0)
    if longest >= length:
        raise ConfigError(f"a prefix of {longest} tokens leaves nothing to generate in {length}: raise max-len or shorten it")
    if n < 1 or (decoding.beam is not None and n > decoding.beam):
        raise ConfigError(
            f"n={n}: give at least 1 sequence per prompt" + (", and at most the beam width" if decoding.beam else "")
        )
    if discriminator is not None and (length > data.length or (data.eos_token is None and length != data.length)):
        raise ConfigError(f"the discriminator scores sequences of the run's length {data.length}: give max-len <= {data.length}")
    prefix = prompt_rows([ids for ids, _ in encoded], 1 if decoding.beam else n) if encoded else None
    samples, noise = _draw(
        generator,
        data,
        decoding,
        n,
        rng,
        prefix=prefix,
        num_prompts=max(len(encoded), 1),
        cond=cond,
        length=length,
        batch_size=batch_size,
    )
    tokens = samples.tokens
    start = torch.zeros(len(tokens), dtype=torch.long) if prefix is None else (prefix >= 0).sum(dim=1)
    if decoding.beam is not None and prefix is not None:
        start = start.repeat_interleave(n)
    logprob, count = generated_log_probs(generator, tokens, start.to(tokens.device), noise, samples.cond, batch_size)
    texts = format_samples(Samples(tokens), data)
    given = [text for text in prompts or [""] for _ in range(n)]
    d_score = None
    if discriminator is not None:
        fitted = torch.nn.functional.pad(tokens, (0, data.length - length), value=data.pad_token)  # D reads the run's length
        with torch.no_grad():
            d_score = prob_real(discriminator, fitted, batch_size, samples.cond)
    notes = [note for _, note in encoded if note]
    return Generated(samples, given, logprob, count, texts, d_score=d_score, notes=notes)


def _draw(
    generator: Generator,
    data: Data,
    decoding: Decoding,
    n: int,
    rng: torch.Generator,
    *,
    prefix: torch.Tensor | None,
    num_prompts: int,
    cond: torch.Tensor | None,
    length: int,
    batch_size: int,
) -> tuple[Samples, torch.Tensor | None]:
    """The sequences (num_prompts * n rows) and the z each was drawn with (None: z = 0 or no noise input)."""
    if decoding.beam is None:
        cond, rows = conditions_for(data, num_prompts * n, rng, cond)
        temperature = 0.0 if decoding.greedy else decoding.temperature
        tokens, noise = generator.sample(
            num_prompts * n,
            length,
            rng,
            temperature=temperature,
            batch_size=batch_size,
            return_noise=True,
            cond=cond,
            top_k=decoding.top_k,
            top_p=decoding.top_p,
            prefix=prefix,
        )
        return Samples(tokens, cond, rows), noise
    cond, rows = conditions_for(data, num_prompts, rng, cond)
    beams, _ = beam_search(
        generator,
        decoding.beam,
        length,
        prefix=prefix,
        cond=cond,
        num_prompts=num_prompts,
        length_penalty=decoding.length_penalty,
    )
    tokens = beams[:, :n].reshape(num_prompts * n, length)  # (B, W, L) -> the n best of each prompt
    if cond is not None:
        cond = cond.repeat_interleave(n, dim=0)
        rows = None if rows is None else rows.repeat_interleave(n)
    return Samples(tokens, cond, rows), None
