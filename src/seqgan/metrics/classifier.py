"""A held-out condition classifier: condition accuracy of generated text judged by a model that is not D.

D is trained against G and moves with it, so its opinion of G's samples is no measure of whether
they fit their condition. This classifier is trained once, on the real (text, label) pairs of a
training file only, never on samples, and then judges every run alike (`seqgan evaluate RUN
--classifier DIR`): condition accuracy = the fraction of samples generated for label c that it
assigns to c. Its own accuracy on held-out real lines (`test_accuracy`) is its quality and the
ceiling to read sample accuracies against.

Model: multinomial logistic regression on a bag of n-grams (presence, not counts): lower-cased
words and punctuation marks (`\\w+|[^\\w\\s]`, so "end." and "end ." read the same) and their
bigrams with start and end markers; the tokenizer's unknown token `<unk>` is left out (it says
nothing about the label). Features seen in fewer than `min_count` training lines are dropped.
Trained full batch by Adam (lr 0.05) for `steps` steps on the mean cross-entropy plus
l2 * sum(W^2), from zero weights: deterministic, a few seconds on one core.

Saved as DIR/classifier.json (the label field, labels, feature strings, settings and accuracies)
and DIR/classifier.safetensors (weight (F, K), bias (K,)).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from seqgan.data.conditions import label_space
from seqgan.data.corpus import Corpus, read_corpus
from seqgan.data.tokenizers import SPECIAL_TOKENS

CONFIG_FILE = "classifier.json"
WEIGHTS_FILE = "classifier.safetensors"
FORMAT_VERSION = 1
_UNIT = re.compile(r"\w+|[^\w\s]")
_UNK = SPECIAL_TOKENS[3]


class ClassifierError(ValueError):
    """A classifier folder or training input that cannot be used; the message says what to do."""


def featurize(text: str) -> list[str]:
    """The distinct n-gram features of one text (sorted): 'w:unit' and 'b:unit unit'."""
    units = _UNIT.findall(text.replace(_UNK, " ").lower())
    padded = ["<s>", *units, "</s>"]
    return sorted({f"w:{u}" for u in units} | {f"b:{a} {b}" for a, b in zip(padded[:-1], padded[1:], strict=True)})


@dataclass
class NgramClassifier:
    """Logistic regression over n-gram features: logits = sum of the rows of `weight` of a text's
    features, plus `bias`."""

    label_field: str
    labels: list[str]
    features: list[str]
    weight: torch.Tensor  # (F, K)
    bias: torch.Tensor  # (K,)
    info: dict[str, Any] = field(default_factory=dict)
    """Settings, training file and accuracies, as written to classifier.json."""

    def __post_init__(self) -> None:
        self._index = {f: i for i, f in enumerate(self.features)}

    def _bags(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The feature ids of all texts, concatenated (N,), and where each text's ids start (R,)."""
        ids, offsets = [], []
        for text in texts:
            offsets.append(len(ids))
            ids += [self._index[f] for f in featurize(text) if f in self._index]
        return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)

    def logits(self, texts: list[str]) -> torch.Tensor:
        """(R, K) logits of R texts."""
        ids, offsets = self._bags(texts)
        return nn.functional.embedding_bag(ids, self.weight, offsets, mode="sum") + self.bias

    def predict(self, texts: list[str]) -> list[str]:
        """The most likely label of each text."""
        if not texts:
            return []
        return [self.labels[i] for i in self.logits(texts).argmax(dim=1).tolist()]

    def accuracy(self, texts: list[str], labels: list[str]) -> float:
        """The fraction of texts whose predicted label is the given one."""
        if len(texts) != len(labels) or not texts:
            raise ValueError(f"accuracy needs as many labels as texts (at least one); got {len(texts)} and {len(labels)}")
        return _hit_rate(self.predict(texts), labels)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"weight": self.weight.contiguous(), "bias": self.bias.contiguous()}, folder / WEIGHTS_FILE)
        payload = {"version": FORMAT_VERSION, "label_field": self.label_field, "labels": self.labels, **self.info}
        payload["features"] = self.features
        (folder / CONFIG_FILE).write_text(json.dumps(payload, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> NgramClassifier:
        folder = Path(folder)
        config, weights = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        if not config.is_file() or not weights.is_file():
            raise ClassifierError(
                f"{folder}: not a classifier folder (needs {CONFIG_FILE} and {WEIGHTS_FILE}); write one with 'seqgan classifier train'"
            )
        try:
            raw = json.loads(config.read_text(encoding="utf-8"))
            tensors = load_file(weights)
            label_field, labels, features = raw.pop("label_field"), raw.pop("labels"), raw.pop("features")
        except (json.JSONDecodeError, KeyError, OSError, ValueError) as err:
            raise ClassifierError(
                f"{folder}: unreadable classifier ({err}); train it again with 'seqgan classifier train'"
            ) from None
        if raw.pop("version", None) != FORMAT_VERSION:
            raise ClassifierError(
                f"{folder}: written by another version of seqgan; train it again with 'seqgan classifier train'"
            )
        shapes = {name: tuple(t.shape) for name, t in tensors.items()}
        if shapes != {"weight": (len(features), len(labels)), "bias": (len(labels),)}:
            raise ClassifierError(
                f"{folder}: the weights do not fit {len(features)} features and {len(labels)} labels; train it again"
            )
        return cls(label_field, labels, features, tensors["weight"], tensors["bias"], raw)


def train_classifier(
    texts: list[str], labels: list[str], label_field: str, min_count: int = 2, l2: float = 1e-3, steps: int = 100
) -> NgramClassifier:
    """Fit the classifier to real (text, label) pairs (see the module docstring); labels are sorted."""
    if min_count < 1 or l2 < 0 or steps < 1:
        raise ClassifierError(f"min_count={min_count}, l2={l2}, steps={steps}: need min_count >= 1, l2 >= 0, steps >= 1")
    if len(texts) != len(labels):
        raise ClassifierError(f"{len(texts)} texts and {len(labels)} labels: give one label per text")
    names = sorted(set(labels))
    if len(names) < 2:
        raise ClassifierError(f"the training lines hold {len(names)} value(s) of {label_field!r}; a classifier needs at least 2")
    counts = Counter(f for text in texts for f in featurize(text))
    features = sorted(f for f, n in counts.items() if n >= min_count)
    if not features:
        raise ClassifierError(f"no n-gram occurs in {min_count} or more training lines; lower --min-count or give more text")
    model = NgramClassifier(label_field, names, features, torch.zeros(len(features), len(names)), torch.zeros(len(names)))
    ids, offsets = model._bags(texts)
    target = torch.tensor([names.index(y) for y in labels])
    weight = nn.Parameter(model.weight)
    bias = nn.Parameter(model.bias)
    optimizer = torch.optim.Adam([weight, bias], lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        logits = nn.functional.embedding_bag(ids, weight, offsets, mode="sum") + bias  # (R, K)
        loss = nn.functional.cross_entropy(logits, target) + l2 * weight.pow(2).sum()
        loss.backward()
        optimizer.step()
    model.weight, model.bias = weight.detach(), bias.detach()
    model.info = {"min_count": min_count, "l2": l2, "steps": steps, "num_features": len(features)}
    return model


def train_on_files(
    train: str | Path,
    test: str | Path,
    label_field: str,
    valid: str | Path | None = None,
    text_field: str = "text",
    **settings: Any,
) -> NgramClassifier:
    """Train on the (text, label) pairs of a JSON Lines training file; measure the accuracy on it, on
    the held-out `test` file (overall and per label) and on `valid` when given, into `info`.

    A held-out label the training file lacks is an error naming its file and line."""
    corpus = read_corpus(train, text_field, (label_field,))
    model = train_classifier(corpus.lines, _labels(corpus), label_field, **settings)
    space = label_space([label_field], corpus)

    def scored(path: str | Path) -> tuple[list[str], list[str]]:
        """(predicted, true) labels of a held-out file; a label the training file lacks is an error."""
        held = read_corpus(path, text_field, (label_field,))
        space.label_ids(held, train)
        return model.predict(held.lines), _labels(held)

    info: dict[str, Any] = {"train_file": str(Path(train).resolve()), "num_train": len(corpus.lines)}
    info["train_accuracy"] = model.accuracy(corpus.lines, _labels(corpus))
    if valid is not None:
        predicted, truth = scored(valid)
        info |= {"valid_file": str(Path(valid).resolve()), "num_valid": len(truth), "valid_accuracy": _hit_rate(predicted, truth)}
    predicted, truth = scored(test)
    info |= {"test_file": str(Path(test).resolve()), "num_test": len(truth), "test_accuracy": _hit_rate(predicted, truth)}
    info["test_accuracy_per_label"] = {
        label: sum(p == y == label for p, y in zip(predicted, truth, strict=True)) / truth.count(label)
        for label in sorted(set(truth))
    }
    model.info |= info
    return model


def _hit_rate(predicted: list[str], truth: list[str]) -> float:
    return sum(p == y for p, y in zip(predicted, truth, strict=True)) / len(truth)


def _labels(corpus: Corpus) -> list[str]:
    return [labels[0] for labels in corpus.labels]
