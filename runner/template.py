"""Prompt templates: `{name}` placeholders filled from a prompt's vars; `{{` and `}}` are braces."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from runner.errors import TemplateError

Scalar = str | int | float | bool

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")


@dataclass(frozen=True, slots=True)
class Template:
    """A prompt text cut into literal pieces and placeholder names, alternating."""

    literals: tuple[str, ...]  # always one more than names
    names: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        literals, names, piece, pos = [], [], [], 0
        for match in _TOKEN.finditer(text):
            piece.append(text[pos : match.start()])
            pos = match.end()
            token = match.group(0)
            if match.group(1):
                literals.append("".join(piece))
                names.append(match.group(1))
                piece = []
            elif token in ("{{", "}}"):
                piece.append(token[0])
            else:
                raise TemplateError(
                    f"unmatched {token!r} at character {match.start() + 1}: a placeholder is "
                    "{name} with a var of that name; write {{ or }} for a literal brace"
                )
        piece.append(text[pos:])
        literals.append("".join(piece))
        return cls(tuple(literals), tuple(names))

    def fill(self, values: Mapping[str, Scalar]) -> str:
        out = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            out.append(render(values[name]))
            out.append(literal)
        return "".join(out)


def render(value: Scalar) -> str:
    """A var value as it reads in a prompt: YAML's spelling of booleans, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
