"""The docstring under each dataclass field, read from the settings' source: the command line's help texts.

One source of truth: a setting's meaning is written once, under its field, and argparse shows it.
"""
from __future__ import annotations

import functools


def field_doc(cls: type, name: str) -> str:
    """The docstring written under a dataclass field, for argparse help texts (one source of truth).

    Its reST literals (````relu````) lose their double backticks: --help is plain text, where they would show as written.
    """
    return _field_docs(cls).get(name, "").replace("``", "")


@functools.lru_cache(maxsize=None)
def _field_docs(cls: type) -> dict[str, str]:
    """Every field docstring of ``cls``, parsed from its source once (a parser asks for dozens)."""
    import ast
    import inspect
    import textwrap

    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    return {node.target.id: str(following.value.value) for node, following in zip(body, body[1:])
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)}
