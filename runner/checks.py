"""What a manifest's values alone cannot show, and how every problem of a manifest is worded.

    wording      explain() a JSON Schema error, did_you_mean(), show() a value, format_path()
    grid checks  grid_size() before anything is expanded; whole_grid() once it is: texts that
                 fill to the same prompt or break the prompt's rules, arms that ask the same
                 thing, final promptObjects that break a rule spanning fields

manifest.py checks each field as it reads it, and plan.py expands; both word their problems
here, so a message reads the same wherever it comes from.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner import schemas
from runner.errors import ManifestError, Problem
from runner.template import Scalar, render
from runner.yamlfile import Path, PathPart

if TYPE_CHECKING:
    from jsonschema import ValidationError  # imported only to explain an error

    from runner.manifest import Manifest
    from runner.plan import PromptPlan

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


# -- the whole grid ------------------------------------------------------------------------------


def grid_size(manifest: Manifest, max_grid: int) -> None:
    """Refuse a grid of more than `max_grid` jobs, from the sizes of its lists alone."""
    total = _grid_total(manifest)
    if total > max_grid:
        message = (
            f"the manifest makes {total:,} jobs, over the limit of {max_grid:,} a manifest: "
            "check the grid is what you mean and split it, or raise the limit with --max-grid N"
        )
        raise ManifestError([manifest.problem((), message)], stage="grid")


def whole_grid(manifest: Manifest, prompts: Sequence[PromptPlan], seeds: Sequence[int]) -> None:
    """Raise ManifestError (stage "grid") with every problem only the expanded grid shows."""
    problems = [problem for prompt in prompts for problem in _text_problems(manifest, prompt)]
    if not problems:
        problems += _duplicate_arms(manifest, prompts)
        problems += _final_objects(manifest, prompts, seeds[0])
    if problems:
        raise ManifestError(problems, stage="grid")


def _grid_total(manifest: Manifest) -> int:
    """How many jobs the manifest makes, from the sizes of its lists alone."""
    grid = math.prod(len(values) for _, values in manifest.sweep) * (len(manifest.zip[0][1]) if manifest.zip else 1)
    seeds = len(manifest.seeds) if manifest.seeds is not None else manifest.repeats
    return sum(math.prod(len(values) for _, values in spec.vars) for spec in manifest.prompts) * grid * seeds


def _text_problems(manifest: Manifest, prompt: PromptPlan) -> Iterator[Problem]:
    """Two var combinations that fill to one text ask the same thing; and each text obeys the
    prompt's own rules (not empty, not too long)."""
    where = ("prompts", prompt.spec.index, "prompt")
    first_with: dict[str, dict[str, Scalar]] = {}
    for var_values, text in prompt.texts:
        if text in first_with:
            yield manifest.problem(
                where,
                f"vars {_describe(var_values)} and {_describe(first_with[text])} both give the prompt "
                f"{text!r}: the same request would be paid for twice",
            )
            continue
        first_with[text] = var_values
        for error in schemas.errors("prompt-object", text, "/$defs/fields/properties/prompt"):
            for _, message in explain(error, ()):
                yield manifest.problem(where, f"with {_describe(var_values)}: {message}")


def _duplicate_arms(manifest: Manifest, prompts: Sequence[PromptPlan]) -> Iterator[Problem]:
    """Two prompts that share a text and every field the grid does not set ask the same thing."""
    swept = {name for name, _ in (*manifest.sweep, *manifest.zip)}
    by_base: dict[str, dict[str, tuple[PromptPlan, dict[str, Scalar]]]] = {}
    for prompt in prompts:
        unswept = {k: v for k, v in prompt.base.items() if k not in swept}
        owners = by_base.setdefault(json.dumps(unswept, sort_keys=True), {})
        clashes: dict[str, tuple[PromptPlan, dict[str, Scalar], dict[str, Scalar]]] = {}
        for var_values, text in prompt.texts:
            owner, owner_values = owners.setdefault(text, (prompt, var_values))
            if owner is not prompt:
                clashes.setdefault(owner.spec.id, (owner, owner_values, var_values))
        for other, other_values, var_values in clashes.values():
            yield manifest.problem(
                ("prompts", prompt.spec.index),
                f"{_with(var_values)}makes the same requests as prompts[{other.spec.index}] "
                f"({other.spec.id!r}, line {other.spec.line}){_with(other_values, before=' ')}: "
                "the same request would be paid for twice",
            )


def _with(values: Mapping[str, Any], before: str = "") -> str:
    return f"{before}with {_describe(values)}" + ("" if before else " ") if values else ""


def _conditional_fields() -> frozenset[str]:
    """Fields read by the promptObject schema's rules that span fields (if/then/else and the like)."""
    schema = schemas.load("prompt-object")
    found: set[str] = set()
    stack = [schema.get(key) for key in ("if", "then", "else", "dependentRequired", "dependentSchemas")]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found.update(node.get("properties", {}))
            found.update(node.get("required", []))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(found)


def _final_objects(manifest: Manifest, prompts: Sequence[PromptPlan], seed: int) -> Iterator[Problem]:
    """Check each prompt's final promptObjects against the provider's table.

    Every value was checked where the manifest states it, so what can still fail is a rule
    spanning fields. Those read only the conditional fields, so one object per distinct
    value of those fields stands for the whole grid.
    """
    conditional = _conditional_fields()
    first_point = {name: values[0] for name, values in (*manifest.sweep, *manifest.zip)}
    varying = [(name, values) for name, values in manifest.sweep if name in conditional]
    zip_names = [name for name, _ in manifest.zip if name in conditional]
    zip_rows = list(dict.fromkeys(zip(*(v for n, v in manifest.zip if n in conditional), strict=True))) or [()]
    variants = [
        dict(zip([n for n, _ in varying], point, strict=True)) | dict(zip(zip_names, row, strict=True))
        for point in itertools.product(*(values for _, values in varying))
        for row in zip_rows
    ]
    for prompt in prompts:
        reported: set[str] = set()
        for variant in variants:
            prompt_object = {"prompt": prompt.texts[0][1], **prompt.base, **first_point, **variant, "seed": seed}
            for error in schemas.errors("prompt-object", prompt_object):
                for path, message in explain(error, tuple(error.absolute_path)):
                    text = f"{'.'.join(map(str, path)) + ': ' if path else ''}{message}"
                    if variant:
                        text = f"with {_describe(variant)}: {text}"
                    if text not in reported:
                        reported.add(text)
                        yield manifest.problem(("prompts", prompt.spec.index), f"its promptObject {text}")


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={_shown(value)}" for name, value in values.items())


def _shown(value: Any) -> str:
    # Quote texts whose edges would otherwise be invisible in a message.
    text = render(value)
    return repr(text) if isinstance(value, str) and (not text or text != text.strip()) else text
