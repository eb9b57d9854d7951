"""How a manifest's problems are worded, wherever they are found: a JSON Schema error explained
with the field's place, a did-you-mean for an unknown name, a value shown as the user wrote it.

manifest.py, settings.py and checks.py word their problems here, so a message reads the same
wherever it comes from.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from runner.yamlfile import Path, PathPart

if TYPE_CHECKING:
    from jsonschema import ValidationError  # imported only to explain an error

_TYPE_NAMES = {
    "string": "a text",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def format_path(path: Iterable[PathPart]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def explain(error: ValidationError, path: Path) -> Iterator[tuple[Path, str]]:
    """Turn a jsonschema error at `path` into (path, message) pairs a user can act on."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind, instance, expected = error.validator, _known(error.instance), _known(error.validator_value)
    if kind == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        x_keys_allowed = "^x-" in schema.get("patternProperties", {})
        hint = " (keys starting with x- are ignored)" if x_keys_allowed else ""
        for key in instance:
            if key not in known and not (x_keys_allowed and str(key).startswith("x-")):
                yield (*path, key), f"unknown field{did_you_mean(str(key), known)}{hint}"
    elif "errorMessage" in schema:
        yield path, str(schema["errorMessage"]).replace("{value}", show(instance))
    elif kind == "required":
        for name in expected:
            if name not in instance:
                yield path, f"missing required field {name!r}"
    elif kind == "type":
        wanted = " or ".join(str(_TYPE_NAMES.get(t, t)) for t in (expected if isinstance(expected, list) else [expected]))
        yield path, f"expected {wanted}, got {show(instance)}"
    elif kind == "enum":
        yield path, f"{show(instance)} is not one of {', '.join(map(str, expected))}"
    elif kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        yield path, f"{show(instance)} is out of range: {_range(schema)}"
    elif kind == "multipleOf":
        yield path, f"{show(instance)} is not a multiple of {expected}"
    elif kind == "minItems":
        yield path, f"must list at least {expected} value(s)"
    elif kind == "minLength":
        yield path, "must not be empty"
    else:
        yield path, error.message


def _known(value: object) -> Any:
    """jsonschema types some error attributes as possibly unset; on a reported error they are set."""
    return value


def did_you_mean(name: str, known: Iterable[str]) -> str:
    known = list(known)
    # A short form ('steps', 'quality') is a part of the field the user meant.
    close = (
        difflib.get_close_matches(name, known, n=1, cutoff=0.6) or [k for k in known if len(name) >= 4 and name.lower() in k][:1]
    )
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f"; expected one of: {', '.join(sorted(known))}"


def show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _range(schema: Mapping[str, Any]) -> str:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is not None and high is not None:
        return f"must be from {low} to {high}"
    if low is not None:
        return f"must be {'above' if 'exclusiveMinimum' in schema else 'at least'} {low}"
    return f"must be {'below' if 'exclusiveMaximum' in schema else 'at most'} {high}"
