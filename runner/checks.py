"""What only the whole grid shows, checked before a manifest may run.

    grid_size()   before anything is expanded: more jobs than the limit
    whole_grid()  once the texts are filled: two var combinations that fill to one prompt, a
                  text that breaks the prompt's rules, arms that ask the same thing, final
                  promptObjects that break a rule spanning fields

plan.py expands a manifest and asks these checks; a manifest's own fields are checked as
manifest.py reads them.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from runner import schemas
from runner.errors import ManifestError, Problem
from runner.manifest import Manifest, PromptSpec
from runner.template import Scalar, render
from runner.wording import explain


class Arm(Protocol):
    """A prompt as plan.py expands it (a PromptPlan): what these checks read of it."""

    @property
    def spec(self) -> PromptSpec: ...
    @property
    def base(self) -> Mapping[str, Any]: ...
    @property
    def texts(self) -> tuple[tuple[dict[str, Scalar], str], ...]: ...


def grid_size(manifest: Manifest, max_grid: int) -> None:
    """Refuse a grid of more than `max_grid` jobs, from the sizes of its lists alone."""
    total = _grid_total(manifest)
    if total > max_grid:
        message = (
            f"the manifest makes {total:,} jobs, over the limit of {max_grid:,} a manifest: "
            "check the grid is what you mean and split it, or raise the limit with --max-grid N"
        )
        raise ManifestError([manifest.problem((), message)], stage="grid")


def whole_grid(manifest: Manifest, prompts: Sequence[Arm], seeds: Sequence[int]) -> None:
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


def _text_problems(manifest: Manifest, prompt: Arm) -> Iterator[Problem]:
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


def _duplicate_arms(manifest: Manifest, prompts: Sequence[Arm]) -> Iterator[Problem]:
    """Two prompts that share a text and every field the grid does not set ask the same thing."""
    swept = {name for name, _ in (*manifest.sweep, *manifest.zip)}
    by_base: dict[str, dict[str, tuple[Arm, dict[str, Scalar]]]] = {}
    for prompt in prompts:
        unswept = {k: v for k, v in prompt.base.items() if k not in swept}
        owners = by_base.setdefault(json.dumps(unswept, sort_keys=True), {})
        clashes: dict[str, tuple[Arm, dict[str, Scalar], dict[str, Scalar]]] = {}
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


def _final_objects(manifest: Manifest, prompts: Sequence[Arm], seed: int) -> Iterator[Problem]:
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
