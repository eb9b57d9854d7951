"""The compiled schema checks judge as jsonschema does, and are made from the schemas as they are.

Valid input is judged by runner/compiled_schemas.py alone, so a compiled check that accepted
what jsonschema rejects would let a bad manifest through. These tests hold the two to the same
verdict on valid documents and on thousands of near misses.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner import compiled_schemas, schemas

# Keywords that mean the same to fastjsonschema's draft 7 and to jsonschema's 2020-12 (and
# annotations neither checks). A schema that needs another keyword needs a second look first:
# draft 7 ignores dependentRequired, unevaluatedProperties, prefixItems, $dynamicRef, ...
SHARED_KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "title", "description", "default", "errorMessage", "format",
    "type", "enum", "const", "properties", "required", "additionalProperties", "patternProperties",
    "propertyNames", "items", "minItems", "minLength", "maxLength", "pattern", "minimum", "maximum",
    "exclusiveMinimum", "multipleOf", "allOf", "anyOf", "oneOf", "not", "if", "then", "else",
}  # fmt: skip

# Maps whose keys are names chosen by the schema's author, not keywords.
NAMED_CHILDREN = {"properties", "patternProperties", "$defs"}

VALID: dict[str, list[Any]] = {
    "manifest": [
        {
            "version": 1,
            "name": "sweep-1",
            "x-note": {"anything": [1, 2]},
            "defaults": {"aspect_ratio": "16:9", "megapixels": "1", "output_quality": 90, "go_fast": False},
            "prompts": [
                {"id": "city", "prompt": "a {style} city", "vars": {"style": ["neon", "foggy", 3, True]}},
                {"id": "cat", "prompt": "a cat", "params": {"guidance": 2.5}, "image_prompt": "inputs/cat.png"},
            ],
            "sweep": {"guidance": [2.5, 3.5], "num_inference_steps": [20, 28]},
            "zip": {"prompt_strength": [0.5, 0.8], "output_quality": [70, 80]},
            "seeds": [1, 2, 4294967295],
            "run": {"concurrency": 8, "order": "interleave", "deadline": "1h30m", "base_url": "http://127.0.0.1:8080"},
        },
        {"version": 1, "name": "min", "prompts": [{"id": "a", "prompt": "x"}], "repeats": 3, "seed_base": 0},
        {
            "version": 1,
            "name": "custom",
            "defaults": {"aspect_ratio": "custom", "width": 512, "height": 1440},
            "prompts": [{"id": "a", "prompt": "x"}],
        },
    ],
    "manifest#/$defs/run": [{}, {"concurrency": 1024, "max_attempts": 3, "deadline": "06:30", "report": False}],
    "prompt-object": [
        {"prompt": "a cat", "seed": 7, "aspect_ratio": "1:1", "megapixels": "0.25", "num_inference_steps": 28},
        {"prompt": "a cat", "aspect_ratio": "custom", "width": 256, "height": 288, "disable_safety_checker": True},
        {"prompt": "a dog", "image_prompt": "images/a.png", "prompt_strength": 0.8, "guidance": 50},
    ],
    "prompt-object#/$defs/fields": [{"guidance": 3.5}, {"megapixels": "2"}, {"seed": 0}],
    "prompt-object#/$defs/fields/properties/prompt": ["a cat", " x "],
    "ai-record": [
        {
            "aiRecord": {
                "uuid": "0f8d6a1e-1b5e-4b8f-9a43-5c8e5d2b7e11",
                "model": "black-forest-labs/flux-dev",
                "type": "IMAGE_GENERATOR",
                "status": "SUCCESS",
                "aiRecordDetail": {"promptObject": {"prompt": "a cat"}, "resultObject": ["images/2026/a.webp"]},
                "temporaryUrl": "https://s3.example/a.webp?sig=1",
            }
        },
    ],
}

# Values where the two drafts and the two libraries could part ways: bool against number,
# integral floats, edges of ranges, empty and blank texts, line ends before `$`.
EDGES: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 0.5, 1.5, -0.5, 32, 32.0, 224, 255, 256, 288, 1440, 1441, 1472, 50, 50.5, 51, 100, 101,
    4294967295, 4294967296, 2**63, 1e300, -0.0, math.inf, -math.inf, math.nan,
    "", " ", "\n", "x", "a\n", "1", "0.25", "2", "1:1", "custom", "16:9", ".", "..", "a/b", "x-y",
    "SUCCESS", "FAILURE", "PROCESSING", "manifest", "interleave", "06:30", "24:00", "1h30m", "http://h", "ftp://h",
    [], [1], [1, 1], ["a"], {}, {"a": 1},
]  # fmt: skip

KEYS = sorted({*schemas.prompt_fields(), "version", "name", "prompts", "sweep", "zip", "seeds", "repeats",
               "seed_base", "run", "vars", "id", "params", "concurrency", "deadline", "aiRecord", "status",
               "aiRecordDetail", "resultObject", "temporaryUrl", "x-extra", "x-", "x", "xy", "X-y", "-x-", "",
               "unknown"})  # fmt: skip

values = st.recursive(
    st.sampled_from(EDGES) | st.integers() | st.floats() | st.text(max_size=8) | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def _places(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every node of a document, the document itself first."""
    yield path
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _places(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _places(child, (*path, index))


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def one_edit_away(document: Any) -> Iterator[Any]:
    """Every document one edit from `document`: each node replaced by each edge value, each
    entry dropped, each known key added to each mapping, each edge value appended to each list."""
    for path in _places(document):
        node = _at(document, path)
        edits: list[Any] = [("replace", value) for value in EDGES]
        if path:
            edits.append(("drop", None))
        if isinstance(node, dict):
            fillers: list[Any] = [1, "x", []]
            edits += [("add", (key, value)) for key in KEYS for value in fillers]
        if isinstance(node, list):
            edits += [("append", value) for value in EDGES]
        for edit, what in edits:
            changed = copy.deepcopy(document)
            if not path and edit == "replace":
                yield copy.deepcopy(what)
                continue
            target = _at(changed, path)
            if edit == "replace":
                _at(changed, path[:-1])[path[-1]] = copy.deepcopy(what)
            elif edit == "drop":
                del _at(changed, path[:-1])[path[-1]]
            elif edit == "add":
                target[what[0]] = copy.deepcopy(what[1])
            else:
                target.append(copy.deepcopy(what))
            yield changed


@st.composite
def near_misses(draw: st.DrawFn, entry: str) -> Any:
    """A valid document of `entry` with one to three edits: a value replaced, a key added or dropped."""
    document = copy.deepcopy(draw(st.sampled_from(VALID[entry])))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_places(document))))
        value = copy.deepcopy(draw(values))  # EDGES holds lists, which later edits may change
        if not path:
            document = value
            continue
        *above, last = path
        parent = document
        for part in above:
            parent = parent[part]
        edit = draw(st.sampled_from(["replace", "replace", "add", "drop"]))
        if edit == "replace":
            parent[last] = value
        elif edit == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = value
        elif edit == "add":
            parent.append(value)
        else:
            del parent[last]
    return document


def _compiled_accepts(entry: str, document: Any) -> bool:
    name, _, pointer = entry.partition("#")
    try:
        schemas.compiled(name, pointer)(document)
    except Exception:
        return False
    return True


def _jsonschema_accepts(entry: str, document: Any) -> bool:
    name, _, pointer = entry.partition("#")
    return bool(schemas.validator(name, pointer).is_valid(document))


@pytest.mark.parametrize("entry", list(VALID))
def test_the_valid_examples_are_valid_to_both(entry: str) -> None:
    for document in VALID[entry]:
        assert _jsonschema_accepts(entry, document), document
        assert _compiled_accepts(entry, document), document


@pytest.mark.parametrize("entry", list(VALID))
def test_the_compiled_checks_judge_every_single_edit_as_jsonschema_does(entry: str) -> None:
    differ = [
        document
        for valid in VALID[entry]
        for document in one_edit_away(valid)
        if _compiled_accepts(entry, document) != _jsonschema_accepts(entry, document)
    ]
    assert not differ, f"{len(differ)} verdicts differ, the first on {differ[0]!r}"


@pytest.mark.parametrize("entry", list(VALID))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_the_compiled_checks_judge_near_misses_as_jsonschema_does(entry: str, data: st.DataObject) -> None:
    document = data.draw(near_misses(entry))
    assert _compiled_accepts(entry, document) == _jsonschema_accepts(entry, document), document


def test_every_compiled_entry_is_exercised() -> None:
    assert set(VALID) == set(schemas.COMPILED)


def test_the_compiled_checks_are_made_from_the_schemas_as_they_are() -> None:
    assert compiled_schemas.SCHEMAS_DIGEST == schemas.digest(), "a schema changed: run `make schemas`"


def test_the_compiled_checks_are_what_make_schemas_writes() -> None:
    import fastjsonschema

    written = schemas.GENERATED.read_text(encoding="utf-8")
    if f"(fastjsonschema {fastjsonschema.VERSION})" not in written.partition("\n")[0]:
        pytest.skip(f"written by another fastjsonschema than {fastjsonschema.VERSION}: only the digest can be compared")
    assert written == schemas.generate_code(), "run `make schemas`"


def test_the_schemas_use_only_keywords_both_validators_read_alike() -> None:
    def keywords(node: Any, named: bool = False) -> Iterator[str]:
        if isinstance(node, dict):
            for key, child in node.items():
                if not named:
                    yield key
                yield from keywords(child, named=not named and key in NAMED_CHILDREN)
        elif isinstance(node, list):
            for child in node:
                yield from keywords(child)

    for name in ("manifest", "prompt-object", "ai-record", "record"):
        unknown = set(keywords(schemas.load(name))) - SHARED_KEYWORDS
        assert not unknown, f"{name}.schema.json uses {sorted(unknown)}"


def test_stale_compiled_code_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    schemas._checks.cache_clear()
    monkeypatch.setattr(compiled_schemas, "SCHEMAS_DIGEST", "an older digest")
    try:
        fresh = schemas.compiled("manifest")
        assert fresh is not compiled_schemas.CHECKS["manifest"]
        fresh(VALID["manifest"][0])
        assert schemas.errors("manifest", {"version": 2}) != []
    finally:
        schemas._checks.cache_clear()


def test_invalid_input_still_gets_every_error_with_its_place() -> None:
    found = schemas.errors("manifest", {"version": 1, "name": "a b", "prompts": [], "colour": 1})
    assert sorted(tuple(error.absolute_path) for error in found) == [(), ("name",), ("prompts",)]
    assert schemas.errors("manifest", VALID["manifest"][0]) == []
