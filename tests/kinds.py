"""The kinds of run that every command must handle on any device (issue 19): the oracle, the oracle
with labels or feature vectors, text, and source sequences, each as a config and overrides that
make it tiny. `kinds(folder)` writes the small corpus and task they read into `folder`;
`every_run(folder)` adds variants of D and G (OPTIONS) that train through other code."""

from __future__ import annotations

from pathlib import Path

from seqgan.data.transduction import write_task

ROOT = Path(__file__).resolve().parents[1]

TINY_TEXT = [
    "data.max_len=12",
    "data.heldout_size=8",
    "pretrain.epochs=2",
    "pretrain.batch_size=8",
    "d_pretrain.steps=1",
    "d_pretrain.num_negatives=32",
    "adversarial.batch_size=8",
    "adversarial.num_negatives=32",
    "adversarial.rollout_num=2",
    "discriminator.batch_size=8",
    "eval.every=1",
    "eval.d_samples=16",
    "eval.final_samples=5",
    "eval.bleu_samples=0",  # the GPU machine may lack fast-bleu; BLEU is not what these tests check
    "discriminator.filter_sizes=[1,2,3]",
    "discriminator.num_filters=[8,8,8]",
]


def kinds(folder: Path) -> dict[str, list[str]]:
    corpus = folder / "corpus.txt"
    words = ["a", "cat", "dog", "sat", "on", "the", "mat", "big", "old", "ran"]
    corpus.write_text("\n".join(" ".join(words[(i * j) % 10] for j in range(3 + i % 6)) for i in range(200)) + "\n")
    write_task(folder / "task", num_train=400, num_valid=40, num_test=40, symbols=5, min_len=2, max_len=5, seed=0)
    task = [f"data.{split}={folder / 'task' / f'{split}.jsonl'}" for split in ("train", "valid", "test")]
    return {
        "oracle": ["configs/smoke.yaml"],
        "label": ["configs/smoke.yaml", "condition.kind=label"],
        "features": ["configs/smoke.yaml", "condition.kind=features", "discriminator.mismatched=0.5"],
        "text": ["configs/text.yaml", f"data.train={corpus}", *TINY_TEXT],
        "source": ["configs/text.yaml", *task, "condition.kind=source", "condition.max_source_len=5", *TINY_TEXT],
    }


PREFIX_D = ["adversarial.reward=prefix_d", "discriminator.causal=true"]
OPTIONS = {  # more of D and G, as (kind of run, overrides)
    "fused convolution": ("oracle", ["discriminator.fused_conv=on"]),
    "label, projection": ("label", ["discriminator.condition_join=projection"]),
    "label, condition head": ("label", ["discriminator.condition_join=classifier"]),
    "features, condition head": ("features", ["discriminator.condition_join=classifier", "discriminator.mismatched=0"]),
    "RNN D": ("oracle", ["discriminator.kind=rnn", "discriminator.rnn_pooling=attention"]),
    "prefix D": ("oracle", PREFIX_D),
    "prefix D, text": ("text", PREFIX_D),
    "noise input": ("oracle", ["generator.noise_dim=4"]),
}


def every_run(tmp_path: Path) -> dict[str, list[str]]:
    """The kinds of run, and each of OPTIONS: its kind's config and overrides with the option's
    added, less the settings the option refuses (rollouts for prefix_d, CNN widths for an RNN)."""
    every = kinds(tmp_path)
    for name, (kind, extra) in OPTIONS.items():
        config, *overrides = every[kind]
        refused = (
            ("rollout_",) if extra is PREFIX_D else ("filter_sizes", "num_filters") if "discriminator.kind=rnn" in extra else ()
        )
        copy = tmp_path / f"{len(every)}.yaml"
        lines = (ROOT / config).read_text().splitlines()
        copy.write_text("\n".join(line for line in lines if not any(key in line for key in refused)) + "\n")
        every[name] = [str(copy), *(o for o in overrides if not any(key in o for key in refused)), *extra]
    return every
