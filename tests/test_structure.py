"""The source reads at a glance: no function in src/ is longer than a screen (about 60 lines, its
docstring included), and no code asks the formatter to look away (fmt skip / off comments)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "seqgan"
MAX_LINES = 60


def long_functions(path: Path, limit: int = MAX_LINES) -> list[str]:
    """'file:line name (N lines)' for every function or method in `path` longer than `limit` lines."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                out.append(f"{path}:{node.lineno} {node.name} ({lines} lines)")
    return out


def test_no_function_in_src_is_longer_than_a_screen():
    found = [entry for path in sorted(SRC.rglob("*.py")) for entry in long_functions(path)]
    assert not found, f"functions over {MAX_LINES} lines (split them into helpers):\n" + "\n".join(found)


def test_the_checker_counts_every_line_of_a_function(tmp_path):
    path = tmp_path / "long.py"
    body = "    x = 1\n" * (MAX_LINES - 1)
    path.write_text(f"def fits():\n{body}\n\ndef too_long():\n{body}    return x\n", encoding="utf-8")
    assert long_functions(path) == [f"{path}:{MAX_LINES + 3} too_long ({MAX_LINES + 1} lines)"]


def test_no_formatter_escapes():
    found = [
        f"{path.relative_to(ROOT)}:{i}"
        for folder in ("src", "tests", "bench", "experiments")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "fmt: " + "skip" in line or "fmt: " + "off" in line
    ]
    assert not found, "write these so that ruff format reads well instead:\n" + "\n".join(found)


MAX_POSITIONAL = 6


def long_positional_lists(path: Path, limit: int = MAX_POSITIONAL) -> list[str]:
    """'file:line name (...)' for every def in `path` with more than `limit` positional parameters
    (self and cls not counted) and every call passing more than `limit` positional arguments: past
    that, settings are keyword-only (or a small typed object) so that no call site is a long list."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            params = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
            if len(params) > limit:
                out.append(f"{path}:{node.lineno} def {node.name} ({len(params)} positional parameters)")
        elif isinstance(node, ast.Call) and len(node.args) > limit:
            out.append(f"{path}:{node.lineno} call {ast.unparse(node.func)} ({len(node.args)} positional arguments)")
    return out


def test_no_long_positional_lists_in_src():
    found = [entry for path in sorted(SRC.rglob("*.py")) for entry in long_positional_lists(path)]
    assert not found, f"over {MAX_POSITIONAL} positional parameters or arguments (make the rest keyword-only):\n" + (
        "\n".join(found)
    )


def test_the_positional_checker_counts_params_and_args(tmp_path):
    path = tmp_path / "pos.py"
    path.write_text(
        "class A:\n"
        "    def ok(self, a, b, c, d, e, f, *, g=1):\n"
        "        return f(a, b, c, d, e, f, g=g)\n"
        "    def many(self, a, b, c, d, e, f, g):\n"
        "        return f(a, b, c, d, e, f, g)\n",
        encoding="utf-8",
    )
    assert long_positional_lists(path) == [
        f"{path}:4 def many (7 positional parameters)",
        f"{path}:5 call f (7 positional arguments)",
    ]
