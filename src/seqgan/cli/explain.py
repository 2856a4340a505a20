"""`seqgan config --explain KEY`: what a setting is, from the config dataclasses themselves.

Each setting's documentation is the string under its field (an attribute docstring, as in
`seqgan.config`); Python keeps no such strings at run time, so they are read from the source
with `ast`. A section's documentation is its class docstring; an algorithm's own section (e.g.
`reinforce`) is found through the algorithm registry.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from typing import Any

from seqgan.config import ALGORITHMS, ExperimentConfig, _unknown_key


@dataclasses.dataclass(frozen=True)
class Setting:
    key: str
    type: str
    default: Any
    doc: str


def field_docs(cls: type) -> dict[str, tuple[str, str]]:
    """field name -> (its annotation as written, the string literal right under it, or ''), a
    field a subclass redeclares without a docstring keeping its base class's."""
    out: dict[str, tuple[str, str]] = {}
    for base in reversed(cls.__mro__):
        if dataclasses.is_dataclass(base):
            out |= {k: v for k, v in _own_field_docs(base).items() if v[1] or k not in out}
    return out


def _own_field_docs(cls: type) -> dict[str, tuple[str, str]]:
    """`field_docs` of the fields written in `cls` itself."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    out = {}
    for node, after in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            doc = ""
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
                doc = inspect.cleandoc(after.value.value)
            out[node.target.id] = (ast.unparse(node.annotation), doc)
    return out


def sections() -> dict[str, type]:
    """Every config section by its YAML key: the shared ones, then each algorithm's own."""
    shared = {f.name: f.type for f in dataclasses.fields(ExperimentConfig)}
    hints = typing.get_type_hints(ExperimentConfig)
    out = {name: hints[name] for name in shared if dataclasses.is_dataclass(hints[name])}
    return out | {name: spec.section for name, spec in sorted(ALGORITHMS.items()) if spec.section is not None}


def settings(cls: type, prefix: str = "") -> list[Setting]:
    docs = field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name == "algo" or dataclasses.is_dataclass(typing.get_type_hints(cls)[f.name]):
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        annotation, doc = docs.get(f.name, ("", ""))
        out.append(Setting(prefix + f.name, annotation, default, doc))
    return out


def first_line(doc: str) -> str:
    """The first sentence of a docstring, on one line."""
    text = " ".join(doc.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def explain(key: str) -> str:
    """The text `seqgan config --explain KEY` prints: a setting's type, default and documentation,
    or a section's keys with one line each; '' (no key) lists the sections."""
    all_sections = sections()
    top = {s.key: s for s in settings(ExperimentConfig)}
    if not key:
        lines = ["Top-level settings:"] + [f"  {s.key}: {first_line(s.doc)}" for s in top.values()]
        lines += ["Sections (seqgan config --explain SECTION lists its keys):"]
        return "\n".join(lines + [f"  {name}: {first_line(cls.__doc__ or '')}" for name, cls in all_sections.items()])
    if key in top:
        return describe(top[key])
    section, _, name = key.partition(".")
    if section not in all_sections:
        raise _unknown_key(section, [*all_sections, *top], "--explain")
    cls = all_sections[section]
    rows = {s.key: s for s in settings(cls, f"{section}.")}
    if not name:
        head = f"{section}: {inspect.cleandoc(cls.__doc__ or '')}"
        short = {k.split(".", 1)[1]: f"{s.type} = {s.default!r}" for k, s in rows.items()}
        w1, w2 = max(map(len, short)), max(map(len, short.values()))
        body = [
            f"  {k:<{w1}}  {t:<{w2}}  {first_line(s.doc)}".rstrip()
            for (k, t), s in zip(short.items(), rows.values(), strict=True)
        ]
        return "\n".join([head, "", *body, "", f"(seqgan config --explain {section}.KEY for the whole text)"])
    if key not in rows:
        raise _unknown_key(name, [k.split(".", 1)[1] for k in rows], f"--explain {section}")
    return describe(rows[key])


def describe(s: Setting) -> str:
    doc = textwrap.indent(s.doc or "(no description)", "  ")
    return f"{s.key}: {s.type}, default {s.default!r}\n{doc}"
