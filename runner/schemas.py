"""The JSON Schemas of `schemas/`, loaded once and wired together by their `$id`s.

The rules live in the schema files; code asks these validators rather than restating them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

# A wheel carries the schemas inside the package; a source checkout keeps them at the top.
_CANDIDATE_DIRS = (Path(__file__).parent / "schemas", Path(__file__).parent.parent / "schemas")
_BASE_URI = "https://flux-batch.local/schemas/"


def schema_dir() -> Path:
    for candidate in _CANDIDATE_DIRS:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the schemas/ directory of flux-batch is missing from this installation")


@cache
def load(name: str) -> dict[str, Any]:
    """The schema `name` (e.g. "manifest"), parsed from `schemas/<name>.schema.json`."""
    with open(schema_dir() / f"{name}.schema.json", encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


@cache
def _registry() -> Registry:
    resources = [
        (schema["$id"], Resource.from_contents(schema))
        for schema in (load(path.name.removesuffix(".schema.json")) for path in schema_dir().glob("*.schema.json"))
    ]
    return Registry().with_resources(resources)


@cache
def validator(name: str, pointer: str = "") -> Draft202012Validator:
    """A validator for schema `name`, or for the subschema at JSON `pointer` inside it."""
    schema: dict[str, Any] = {"$ref": f"{_BASE_URI}{name}.schema.json#{pointer}"} if pointer else load(name)
    return Draft202012Validator(schema, registry=_registry())


@cache
def compiled(name: str) -> Callable[[Any], Any]:
    """Schema `name` compiled to Python code: for hot paths that check every API answer.

    About 30 times faster than `validator` and it stops at the first error, which is what a
    hot path wants; manifests use `validator` for every error with its location.
    """
    check: Callable[[Any], Any] = fastjsonschema.compile(load(name))
    return check


def prompt_fields() -> dict[str, dict[str, Any]]:
    """promptObject field name -> its schema, from the provider's parameter table."""
    fields: dict[str, dict[str, Any]] = load("prompt-object")["$defs"]["fields"]["properties"]
    return fields
