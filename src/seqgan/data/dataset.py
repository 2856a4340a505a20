"""`Data`: the one shape the training loop sees, whatever the source.

- oracle: the oracle LM, its training samples and held-out sets drawn with other seeds;
- text: a tokenised corpus (see `seqgan.data.text`), with an end token and padding.
A conditional run's `Data` also holds the condition of every row of each set (`cond_*`) and the
`ConditionSpace` they live in, saved with the run as conditions.json.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from seqgan.data.conditions import ConditionSpace
from seqgan.data.text import TextData
from seqgan.data.tokenizers import BOS, EOS, PAD


@dataclass
class Data:
    train: torch.Tensor  # (R, L) token ids
    test: torch.Tensor  # (R', L) held out: NLL-test, D accuracy
    vocab_size: int
    start_token: int
    eos_token: int | None  # None: fixed-length sequences (the oracle)
    pad_token: int
    oracle: nn.Module | None = None  # the oracle LM (a frozen `Generator`): its samples are the data
    text: TextData | None = None
    valid: torch.Tensor | None = None  # (R'', L) validation: nll_valid, early stopping; never the test set
    condition: ConditionSpace | None = None  # None: an unconditional run
    cond_train: torch.Tensor | None = None  # (R, ...) the condition of each row of train
    cond_test: torch.Tensor | None = None  # (R', ...)
    cond_valid: torch.Tensor | None = None  # (R'', ...)
    word_vectors: torch.Tensor | None = None  # (V, P) pre-trained token vectors G and D embed with (data.word_vectors)

    @classmethod
    def from_text(cls, text: TextData) -> Data:
        """A tokenised corpus's sets: each sequence ends with EOS and is padded with PAD."""
        return cls(
            train=text.train,
            test=text.test,
            vocab_size=text.tokenizer.vocab_size,
            start_token=BOS,
            eos_token=EOS,
            pad_token=PAD,
            text=text,
            valid=text.valid,
            condition=text.condition,
            cond_train=text.cond_train,
            cond_test=text.cond_test,
            cond_valid=text.cond_valid,
        )

    @classmethod
    def from_oracle(
        cls, oracle: nn.Module, vocab_size: int, condition: ConditionSpace | None, sets: dict[str, torch.Tensor | None]
    ) -> Data:
        """An oracle's samples: fixed-length sequences started by token 0, no end token. `sets` maps
        `train`, `test` (and `valid`, `cond_*` when there are some) to their tensors."""
        return cls(vocab_size=vocab_size, start_token=0, eos_token=None, pad_token=0, oracle=oracle, condition=condition, **sets)

    @property
    def length(self) -> int:
        return self.train.shape[1]

    def sets(self) -> dict[str, torch.Tensor]:
        """Every tensor of the data by name (the oracle's are saved with the run)."""
        names = ("train", "test", "valid", "cond_train", "cond_test", "cond_valid")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}

    def to(self, device: torch.device) -> Data:
        """The same data with every tensor (and the oracle) on `device`."""
        moved = {k: v.to(device) for k, v in self.sets().items()}
        oracle = None if self.oracle is None else self.oracle.to(device)
        vectors = None if self.word_vectors is None else self.word_vectors.to(device)
        return dataclasses.replace(self, oracle=oracle, word_vectors=vectors, **moved)
