"""The package's layers, read from the source's imports (every import, those inside functions and
under TYPE_CHECKING too): a module imports only from its own layer or those below it.

    0 errors, files, runtime, seeding,  plain helpers (and torch.distributed glue)
      distributed
    1 config                            typed settings
    2 data                              corpora, tokenizers, conditions, the data bundle
    3 models                            generators, discriminators, condition encoders, the oracle LM
    4 rl, generation, decoding          rewards and losses; samples of a generator for a data set; prompts and decoding
    5 metrics                           what is measured (never how training runs)
    6 algorithms                        each GAN variant: its models, losses and updates
    7 training                          the phase loop, checkpoints, run folders, evaluation
    8 cli, api, the package             what users call

And two rules the order alone does not say: models take plain arguments and never import the
config; metrics never import the config either (they are given what they measure).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "seqgan"
LAYERS = [
    ("errors", "files", "runtime", "seeding", "distributed", "cuda_graphs"),
    ("config",),
    ("data",),
    ("models",),
    ("rl", "generation", "decoding"),
    ("metrics",),
    ("algorithms",),
    ("training",),
    ("cli", "api", "__init__", "__main__"),
]
FORBIDDEN = {("models", "config"), ("metrics", "config")}


def part(module: str) -> str:
    """'seqgan.models.generator' -> 'models'; the package itself -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(name: str) -> int:
    for i, names in enumerate(LAYERS):
        if name in names:
            return i
    raise AssertionError(f"seqgan.{name} has no layer: add it to LAYERS in {Path(__file__).name}")


def imports(path: Path) -> list[str]:
    """Every seqgan module `path` imports (absolute names)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "seqgan":  # from seqgan import distributed
            out += [f"seqgan.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seqgan"):
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("seqgan")]
    return out


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" and len(rel.parts) > 2 else rel.parts)


def test_no_module_imports_from_a_layer_above_its_own():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        here = part(module_name(path))
        for target in imports(path):
            there = part(target) if target != "seqgan" else "__init__"
            if layer(there) > layer(here) or (here, there) in FORBIDDEN:
                wrong.append(f"{path.relative_to(SRC.parent)} imports {target}")
    assert not wrong, "imports that run back up the layers:\n" + "\n".join(wrong)


def test_the_checker_sees_an_import_inside_a_function(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from seqgan.training.run import Trainer\n    from seqgan import cli\n", encoding="utf-8")
    assert imports(source) == ["seqgan.training.run", "seqgan.cli"]
