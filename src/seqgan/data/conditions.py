"""Conditions on the data side: what a run conditions on, reading it from files, naming it.

`ConditionSpace` describes a run's conditions and is saved with the run (`conditions.json`), so
`seqgan sample` and `evaluate` read them back exactly:
- kind 'label': one or more label fields, each with its list of values; a sequence's condition is
  a row of label ids (int64), id = the value's index in its field's list;
- kind 'features': a float vector of `feature_dim` values per sequence;
- kind 'source': a source token sequence per sequence (seq2seq), a row of `source_len` ids in the
  run's one vocabulary (the target's tokenizer, trained on both sides), padding (0) after them.

Text corpora hold labels and sources in JSON Lines fields (read by `seqgan.data.corpus`) and
features in a `.npy` or `.safetensors` file with one row per sequence (non-blank line) of its
corpus file, in order. Everything is checked on load: a missing label or source, an empty source,
an unknown label value, a features file of the wrong row count or width, or one holding NaN gives
a `CorpusError` naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqgan.data.corpus import Corpus, CorpusError, fit_lengths
from seqgan.data.tokenizers import PAD, UNK, Tokenizer
from seqgan.errors import ConfigError

FEATURES_KEY = "features"  # the tensor read from a .safetensors file holding several


@dataclass(frozen=True)
class ConditionSpace:
    kind: str  # 'label', 'features' or 'source'
    fields: tuple[str, ...] = ()  # label fields; for a source, its JSONL field
    values: tuple[tuple[str, ...], ...] = ()  # per label field, its values; a label's id is its index
    feature_dim: int = 0
    source_len: int = 0  # kind 'source': S, the ids a source row holds (condition.max_source_len)

    @property
    def num_classes(self) -> list[int]:
        return [len(v) for v in self.values]

    def to_dict(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "fields": list(self.fields),
            "values": [list(v) for v in self.values],
            "feature_dim": self.feature_dim,
        }
        return out | ({"source_len": self.source_len} if self.kind == "source" else {})

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ConditionSpace:
        values = tuple(tuple(v) for v in raw["values"])
        return cls(raw["kind"], tuple(raw["fields"]), values, raw["feature_dim"], raw.get("source_len", 0))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ConditionSpace:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def label_ids(self, corpus: Corpus, train_path: str | Path) -> torch.Tensor:
        """The corpus's labels as ids: (lines, fields) int64; a value the training file lacks is an error."""
        index = [{v: i for i, v in enumerate(values)} for values in self.values]
        rows = []
        for labels, number in zip(corpus.labels, corpus.line_numbers, strict=True):
            row = []
            for name, value, ids in zip(self.fields, labels, index, strict=True):
                if value not in ids:
                    raise CorpusError(
                        f"{corpus.path}:{number}: label {name}={value!r} does not occur in the training file {train_path}; "
                        f"known values: {', '.join(self.values[self.fields.index(name)])}"
                    )
                row.append(ids[value])
            rows.append(row)
        return torch.tensor(rows, dtype=torch.long).view(len(rows), len(self.fields))

    def names(self, cond: torch.Tensor) -> list[str]:
        """Label conditions (R, fields) -> R names like 'genre=poem,mood=sad' (labels only)."""
        return [
            ",".join(f"{name}={self.values[i][v]}" for i, (name, v) in enumerate(zip(self.fields, row, strict=True)))
            for row in cond.tolist()
        ]

    def parse(self, specs: list[str], pool: torch.Tensor, tokenizer: Tokenizer | None = None) -> torch.Tensor:
        """`--condition` arguments -> one condition (1, ...): 'field=VALUE' for every label field,
        'source=TEXT' (tokenized by the run's `tokenizer`) for a source, or 'row=INDEX', the
        condition of held-out sequence INDEX (its row of `pool`)."""
        pairs = []
        for spec in specs:
            name, sep, value = spec.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise ConfigError(
                    f"--condition {spec!r}: write {self._example()}, or row=INDEX (a held-out sequence's condition)"
                )
            pairs.append((name.strip(), value.strip()))
        names = [n for n, _ in pairs]
        if "row" in names:
            if len(pairs) != 1:
                raise ConfigError("--condition row=INDEX names a whole condition; give it alone")
            value = pairs[0][1]
            if not value.isdigit() or int(value) >= len(pool):
                raise ConfigError(f"--condition row={value}: use a row of the held-out set, 0 to {len(pool) - 1}")
            return pool[int(value) : int(value) + 1]
        if self.kind == "source":
            if names != ["source"]:
                raise ConfigError(
                    f"--condition {specs[0]!r}: this run conditions on a source sequence; give {self._example()} once, "
                    "or row=INDEX (a held-out sequence's source)"
                )
            return self.source_ids(pairs[0][1], tokenizer).to(pool.device)
        if self.kind != "label":
            raise ConfigError(
                f"--condition {specs[0]!r}: this run conditions on feature vectors; choose one by row=INDEX (held-out set)"
            )
        if sorted(names) != sorted(self.fields):
            raise ConfigError(
                f"--condition: give each label field once ({', '.join(self.fields)}), e.g. {self._example()}; got {', '.join(specs)}"
            )
        given = dict(pairs)
        ids = []
        for field, values in zip(self.fields, self.values, strict=True):
            if given[field] not in values:
                raise ConfigError(
                    f"--condition {field}={given[field]}: unknown label; known values of {field!r}: {', '.join(values)}"
                )
            ids.append(values.index(given[field]))
        return torch.tensor([ids], dtype=torch.long, device=pool.device)

    def source_ids(self, text: str, tokenizer: Tokenizer) -> torch.Tensor:
        """One source text -> its row of ids (1, source_len); too long or no tokens is an error, never cut."""
        ids = tokenizer.encode(text)
        if not ids:
            raise ConfigError(f"--condition source={text!r}: the tokenizer finds no tokens in it; give a non-empty source")
        if len(ids) > self.source_len:
            raise ConfigError(
                f"--condition source=...: {len(ids)} tokens, but this run reads sources of at most {self.source_len} "
                "(condition.max_source_len); give a shorter source"
            )
        return torch.tensor([ids + [PAD] * (self.source_len - len(ids))], dtype=torch.long)

    def _example(self) -> str:
        if self.kind == "source":
            return "--condition source='TEXT'"
        if self.kind != "label":
            return "row=0"
        return " ".join(f"--condition {f}={v[0]}" for f, v in zip(self.fields, self.values, strict=True))


def label_space(fields: list[str], corpus: Corpus) -> ConditionSpace:
    """The label fields and, per field, its values in the training file, sorted."""
    values = tuple(tuple(sorted({labels[i] for labels in corpus.labels})) for i in range(len(fields)))
    return ConditionSpace("label", tuple(fields), values)


def encode_sources(
    texts: list[str], tokenizer: Tokenizer, max_len: int, overflow: str = "truncate"
) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """Source texts -> (R, max_len) ids, left aligned, PAD after them (no end token: the encoder
    reads each row to its length); the index (R,) of the text each row came from; a report.

    Sources longer than `max_len` tokens are truncated or, with overflow='drop', left out, as the
    target lines are (`seqgan.data.corpus.encode_lines`); sources with no tokens are left out.
    The report counts them (source_truncated, source_dropped, source_empty), the UNK tokens and
    the longest source."""
    fitted, kept, counts = fit_lengths(texts, tokenizer, max_len, overflow)
    tokens = torch.tensor([ids + [PAD] * (max_len - len(ids)) for ids in fitted], dtype=torch.long).reshape(len(fitted), max_len)
    report = {f"source_{k}": v for k, v in counts.items()} | {"source_unk_tokens": int((tokens == UNK).sum())}
    return tokens, kept, report | {"max_source_len": max_len}


def read_features(path: str | Path, corpus: Corpus, width: int | None = None) -> torch.Tensor:
    """The feature rows of `corpus`'s sequences: (lines, F) float32, one row per non-blank line.

    width: the F the rows must have (that of the training features); None takes the file's."""
    path = Path(path)
    rows = _load_array(path)
    if rows.ndim != 2 or rows.shape[1] == 0 or not np.issubdtype(rows.dtype, np.number):
        raise CorpusError(
            f"{path}: features must be a 2-D numeric array (rows, feature_dim), got shape {rows.shape} {rows.dtype}"
        )
    n = len(corpus.lines)
    if len(rows) < n:
        raise CorpusError(
            f"{path} has {len(rows)} rows for the {n} sequences (non-blank lines) of {corpus.path}: "
            f"{corpus.path}:{corpus.line_numbers[len(rows)]} has no row; give one row per sequence, in order"
        )
    if len(rows) > n:
        raise CorpusError(
            f"{path} has {len(rows)} rows for the {n} sequences (non-blank lines) of {corpus.path}, the last at line "
            f"{corpus.line_numbers[-1]}: rows {n} and after have no sequence; give one row per sequence, in order"
        )
    if width is not None and rows.shape[1] != width:
        raise CorpusError(
            f"{path}: rows of {rows.shape[1]} values, but the training features have {width}; every features file needs the same width"
        )
    bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
    if len(bad):
        raise CorpusError(f"{path}: row {bad[0]} ({corpus.path}:{corpus.line_numbers[bad[0]]}) holds NaN or infinity")
    return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))


def _load_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise CorpusError(f"{path}: features file not found; check the path (relative paths start at the working directory)")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)  # never runs code from the file
        except Exception as err:  # noqa: BLE001 - any parse failure means the same thing to the user
            raise CorpusError(f"{path}: not a readable .npy array ({err})") from None
    if suffix == ".safetensors":
        from safetensors.numpy import load_file

        try:
            tensors = load_file(path)
        except Exception as err:  # noqa: BLE001
            raise CorpusError(f"{path}: not a readable .safetensors file ({err})") from None
        if FEATURES_KEY in tensors:
            return tensors[FEATURES_KEY]
        if len(tensors) != 1:
            raise CorpusError(f"{path}: holds {sorted(tensors)}; name the features tensor {FEATURES_KEY!r} or keep only it")
        return next(iter(tensors.values()))
    raise CorpusError(f"{path}: features must be a .npy or .safetensors file")


def oracle_space(kind: str, num_classes: int, feature_dim: int) -> ConditionSpace | None:
    """The conditions of the conditional oracle: one label field 'class' of K values, or F features."""
    if kind == "label":
        return ConditionSpace("label", ("class",), (tuple(str(k) for k in range(num_classes)),))
    return ConditionSpace("features", feature_dim=feature_dim) if kind == "features" else None


def draw_conditions(space: ConditionSpace, num: int, generator: torch.Generator) -> torch.Tensor:
    """Conditions of the oracle's sequences: a uniform class (num, 1) or f ~ N(0, I) (num, F)."""
    if space.kind == "label":
        return torch.randint(space.num_classes[0], (num, 1), generator=generator)
    return torch.randn(num, space.feature_dim, generator=generator)
