"""The Python interface to a trained run: `generate`, with the arguments of `seqgan sample`.

    from seqgan.api import generate
    from seqgan.training.experiment import open_run

    run = open_run("runs/coco_seqgan")  # read once; every later call works in memory
    out = generate(run, ["a man riding", "two dogs"], n=3, top_p=0.9, seed=1)
    out.texts, out.logprob, out.nll          # 6 sequences, prompt-major
    generate(run, beam=4, n=2).texts         # the 2 best of a width-4 beam search

See docs/generation.md for what each choice does and how the scores are defined.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from seqgan.config import ConfigError
from seqgan.data.tokenizers import UNK
from seqgan.decoding import Decoding, Generated, generate_for_data
from seqgan.training.experiment import Run, load_discriminator, open_run


def generate(
    run: Run | str | Path,
    prompts: str | list[str] | None = None,
    n: int = 1,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    beam: int | None = None,
    length_penalty: float = 1.0,
    max_len: int | None = None,
    seed: int = 0,
    condition: list[str] | None = None,
    discriminator: bool | nn.Module = False,
) -> Generated:
    """`n` sequences per prompt (or `n` from scratch) of a run (a `Run` from `open_run`, or its
    folder, `DIR[@CHECKPOINT]`). prompts: text for a text run, token ids ('3 17 42') for an
    oracle run. condition: `--condition` specs of a conditional run ('field=value', 'source=TEXT',
    'row=N'); without it each sequence gets the condition of a held-out row. discriminator: True
    loads the run's D from the same checkpoint (or pass a loaded D) to score each sequence.
    Bad arguments raise `ConfigError` with a one-line message."""
    if not isinstance(run, Run):
        run = open_run(run)
    decoding = Decoding(temperature, top_k, top_p, greedy, beam, length_penalty)
    if isinstance(prompts, str):
        prompts = [prompts]
    if max_len is not None and max_len < 1:
        raise ConfigError(f"max-len {max_len}: must be >= 1")
    d = load_discriminator(run) if discriminator is True else (discriminator if isinstance(discriminator, nn.Module) else None)
    cond, note = parse_condition(run, condition or [])
    rng = torch.Generator(run.device).manual_seed(seed)
    out = generate_for_data(run.generator, run.data, decoding, n, rng, prompts, cond, max_len, run.config.eval.batch_size, d)
    if note:
        out.notes.insert(0, note)
    return out


def parse_condition(run: Run, specs: list[str]) -> tuple[torch.Tensor | None, str | None]:
    """`--condition` specs -> the condition (1, ...) (None without specs) and a note on unknown source words."""
    if not specs:
        return None, None
    data = run.data
    if data.condition is None:
        raise ConfigError(f"--condition: {run.dir} is an unconditional run; sample it without --condition")
    tokenizer = None if data.text is None else data.text.tokenizer
    cond = data.condition.parse(specs, data.cond_test, tokenizer)
    unknown = int((cond == UNK).sum()) if data.condition.kind == "source" else 0
    note = f"{unknown} source token(s) are not in the run's vocabulary and read as <unk>" if unknown else None
    return cond, note
