"""Text metrics of a generator on a corpus run, each defined in `seqgan.metrics.text`:

- bleu{n}_test: BLEU-n (n = 2..5) of the samples against the test lines (Texygen protocol);
- bleu{n}_heldout: the same against the held-out lines of the training file;
- self_bleu{n}: Self-BLEU-n of the samples;
- distinct{n} (n = 1..4), unique_frac (distinct samples / samples), copy_rate (samples equal to a training line), length statistics
  (in BLEU units: words, or characters for char-level corpora, without the end token).
`quick_text_metrics` is the subset logged during training (BLEU against the test lines, Self-BLEU,
distinct{n} and unique_frac).
A conditional run's samples are drawn for the conditions of test lines picked at random.

Per condition (label runs, `per_condition_text_metrics`): for each of the K label conditions of
the test lines, n // K samples drawn for it, and
- bleu{n}_test: BLEU-n of those samples against the test lines of that condition only;
- self_bleu{n}: Self-BLEU-n among those samples;
- with a held-out classifier (`seqgan.metrics.classifier`) of one label field: cond_acc, the
  fraction of the samples it assigns to the condition's value of that field, and cond_acc_real,
  the same for the condition's test lines as the run's tokenizer writes them (unknown words as
  <unk>, cut at max_len): the ceiling for samples. Over all conditions, cond_acc is the mean over
  all samples (each condition weighs alike) and cond_acc_real over all test lines.
"""

from __future__ import annotations

from pathlib import Path

import torch

from seqgan.data.conditions import ConditionSpace
from seqgan.data.text import TextData, decode_rows, text_units
from seqgan.errors import ConfigError
from seqgan.metrics import text as tm
from seqgan.metrics.classifier import ClassifierError, NgramClassifier
from seqgan.metrics.conditional import group_rows
from seqgan.models.condition import pick_rows
from seqgan.models.generator import Generator

ORDERS = (2, 3, 4, 5)


def sample_units(
    generator: Generator,
    data: TextData,
    n: int,
    rng: torch.Generator,
    *,
    temperature: float,
    batch_size: int,
    top_k: int | None = None,
    top_p: float | None = None,
) -> list[list[str]]:
    cond = pick_rows(data.cond_test, n, rng)  # TextData lives on the CPU; G and rng on the run's device
    cond = None if cond is None else cond.to(rng.device)
    samples = generator.sample(
        n, data.train.shape[1], rng, temperature=temperature, batch_size=batch_size, cond=cond, top_k=top_k, top_p=top_p
    )
    return [text_units(s, data.tokenizer.kind) for s in decode_rows(data.tokenizer, samples)]


def _refs(lines: list[str], kind: str) -> list[list[str]]:
    return [text_units(line, kind) for line in lines]


def _quality_and_diversity(hyps: tm.Sentences, data: TextData) -> dict[str, float]:
    """BLEU against the test lines, Self-BLEU, distinct-n and unique_frac of samples (>= 2): mode
    collapse raises Self-BLEU and lowers distinct-n and unique_frac."""
    out = {f"bleu{k}_test": v for k, v in tm.bleu(hyps, _refs(data.test_lines, data.tokenizer.kind), ORDERS).items()}
    out |= {f"self_bleu{k}": v for k, v in tm.self_bleu(hyps, ORDERS).items()}
    return out | tm.sequence_diversity(hyps)


def quick_text_metrics(generator: Generator, data: TextData, n: int, rng: torch.Generator, batch_size: int) -> dict[str, float]:
    return _quality_and_diversity(sample_units(generator, data, n, rng, temperature=1.0, batch_size=batch_size), data)


def full_text_metrics(
    generator: Generator,
    data: TextData,
    n: int,
    rng: torch.Generator,
    *,
    temperature: float,
    batch_size: int,
    top_k: int | None = None,
    top_p: float | None = None,
) -> dict[str, float]:
    kind = data.tokenizer.kind
    hyps = sample_units(generator, data, n, rng, temperature=temperature, batch_size=batch_size, top_k=top_k, top_p=top_p)
    out = _quality_and_diversity(hyps, data)
    out |= {f"bleu{k}_heldout": v for k, v in tm.bleu(hyps, _refs(data.heldout_lines, kind), ORDERS).items()}
    out["copy_rate"] = tm.copy_rate(hyps, _refs(data.train_lines, kind))
    out |= {f"length_{k}": v for k, v in tm.length_stats(hyps).items()}
    return out


def per_condition_text_metrics(
    generator: Generator,
    data: TextData,
    n: int,
    rng: torch.Generator,
    *,
    temperature: float,
    batch_size: int,
    classifier: NgramClassifier | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """({condition name: its metrics}, the classifier's accuracies over all conditions) of a label
    run; see the module docstring. Conditions come in sorted order, each drawing from `rng` in turn."""
    space, kind = data.condition, data.tokenizer.kind
    groups = group_rows(space.names(data.cond_test_lines))  # each condition's test lines: its BLEU references
    per_class = n // len(groups)
    if per_class < 2:
        raise ConfigError(
            f"-n {n} gives fewer than 2 samples for each of the {len(groups)} conditions of the test lines; use -n >= {2 * len(groups)}"
        )
    column = None if classifier is None else classifier_column(classifier, space)
    encoded = group_rows(space.names(data.cond_test))  # each condition's rows of the encoded test set
    out: dict[str, dict[str, float]] = {}
    hits, real_hits = 0, 0
    for name, rows in groups.items():
        cond = data.cond_test_lines[rows[:1]].to(rng.device).expand(per_class, -1)  # (per_class, fields), on G's device
        tokens = generator.sample(
            per_class,
            data.train.shape[1],
            rng,
            temperature=temperature,
            batch_size=batch_size,
            cond=cond,
            top_k=top_k,
            top_p=top_p,
        )
        texts = decode_rows(data.tokenizer, tokens)
        hyps = [text_units(t, kind) for t in texts]
        refs = _refs([data.test_lines[i] for i in rows.tolist()], kind)
        metrics = {"num_samples": per_class}
        metrics |= {f"bleu{k}_test": v for k, v in tm.bleu(hyps, refs, ORDERS).items()}
        metrics |= {f"self_bleu{k}": v for k, v in tm.self_bleu(hyps, ORDERS).items()}
        if classifier is not None:
            value = space.values[column][int(cond[0, column])]
            real = decode_rows(data.tokenizer, data.test[encoded[name]]) if name in encoded else []
            h, r = (sum(label == value for label in classifier.predict(t)) for t in (texts, real))
            metrics["cond_acc"] = h / per_class
            metrics |= {"cond_acc_real": r / len(real)} if real else {}
            hits, real_hits = hits + h, real_hits + r
        out[name] = metrics
    overall = {}
    if classifier is not None:
        overall = {"cond_acc": hits / (per_class * len(groups)), "cond_acc_real": real_hits / len(data.test)}
    return out, overall


def classifier_for_run(folder: str | Path, test_file: Path | None, space: ConditionSpace | None) -> NgramClassifier:
    """Load a classifier to judge a run's samples: the run must be label-conditioned text (`test_file`
    the file its test lines come from; None for oracle data), the classifier must predict one of its
    label fields, and it must not have trained on the run's test lines."""
    classifier = NgramClassifier.load(folder)
    if test_file is None or space is None or space.kind != "label":
        raise ConfigError(
            "--classifier judges samples of label-conditioned text runs (condition.kind=label); this run is not one"
        )
    classifier_column(classifier, space)
    test_source = test_file.resolve()
    trained_on = classifier.info.get("train_file")
    if trained_on and Path(trained_on).resolve() == test_source:
        raise ClassifierError(
            f"{folder} was trained on {test_source}, which holds the run's test lines; train the classifier on the "
            "run's training file and give the run a separate data.test"
        )
    return classifier


def classifier_column(classifier: NgramClassifier, space: ConditionSpace) -> int:
    """The label field of the run that the classifier predicts; its values must all be the classifier's labels."""
    if space.kind != "label" or classifier.label_field not in space.fields:
        fields = f"label fields {', '.join(space.fields)}" if space.kind == "label" else "no label fields"
        raise ClassifierError(
            f"the classifier predicts {classifier.label_field!r}, but the run has {fields}; "
            "train one with 'seqgan classifier train ... --field FIELD' for a field of the run"
        )
    column = space.fields.index(classifier.label_field)
    unknown = sorted(set(space.values[column]) - set(classifier.labels))
    if unknown:
        raise ClassifierError(
            f"the run's {classifier.label_field} values {', '.join(unknown)} are not labels of the classifier "
            f"({', '.join(classifier.labels)}); train it on the run's training file"
        )
    return column
