"""Load a manifest: safe YAML, its JSON Schema, and the checks no schema can express.

Every problem is collected with its file, line and field path, so one pass of `validate` shows
all of them. The result is a frozen `Manifest` whose promptObject values are normalised
(`megapixels: 1` becomes the API's "1", `guidance: 3.0` becomes 3) so equal requests are equal.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from runner import inputs, schemas
from runner.errors import ManifestError, Problem, TemplateError
from runner.template import Template, render
from runner.wording import did_you_mean, explain, format_path, show
from runner.yamlfile import Document, Path, PathPart, parse

if TYPE_CHECKING:
    from jsonschema import ValidationError  # imported only to explain an error

Axis = tuple[str, tuple[Any, ...]]
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

# Fields the manifest sets through its own keys, never as plain promptObject values.
_RESERVED_FIELDS = {
    "prompt": "the prompt text comes from prompts[].prompt",
    "seed": "seeds come from `seeds: [...]`, or from `repeats` and `seed_base`",
}


@dataclass(frozen=True, slots=True)
class PromptSpec:
    """One entry of `prompts`: its text template, vars, and its own promptObject fields."""

    index: int
    id: str
    template: Template
    vars: tuple[Axis, ...]
    fields: Mapping[str, Any]  # `params`, plus a prompt-level `image_prompt`
    line: int | None


@dataclass(frozen=True, slots=True)
class Manifest:
    path: str
    text: str
    name: str
    defaults: Mapping[str, Any]
    prompts: tuple[PromptSpec, ...]
    sweep: tuple[Axis, ...]
    zip: tuple[Axis, ...]
    seeds: tuple[int, ...] | None  # listed seeds; None when derived from repeats and seed_base
    repeats: int
    seed_base: int
    run: Mapping[str, Any]
    local_images: Mapping[str, FsPath]  # image_prompt token -> the local file it stands for
    document: Document = field(repr=False, compare=False)

    def problem(self, path: Sequence[PathPart], message: str) -> Problem:
        return Problem(self.path, self.document.line_of(path), format_path(path), message)


def load(path: str | FsPath, base_dir: FsPath | None = None) -> Manifest:
    """Read and check the manifest at `path`; raise ManifestError listing every problem."""
    shown = str(path)
    try:
        with open(path, "rb") as manifest:
            raw = manifest.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ManifestError([Problem(shown, None, "", f"cannot read the manifest: {exc.strerror or exc}")]) from exc
    if len(raw) > MAX_MANIFEST_BYTES:
        message = (
            f"the manifest is larger than {MAX_MANIFEST_BYTES // 1024**2} MB; a manifest describes a grid, it does not list it"
        )
        raise ManifestError([Problem(shown, None, "", message)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = f"the manifest is not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8"
        raise ManifestError([Problem(shown, line, "", message)]) from exc
    return loads(text, shown, base_dir)


def loads(text: str, path: str = "<manifest>", base_dir: FsPath | None = None) -> Manifest:
    """Check manifest `text`; local files it names are looked up in `base_dir` (default: the
    manifest's own directory)."""
    document, yaml_errors = parse(text)
    if document is None:
        raise ManifestError(Problem(path, e.line, "", e.message) for e in yaml_errors)
    data = document.data
    if data is None:
        raise ManifestError([Problem(path, 1, "", "the manifest is empty: it needs version, name and prompts")])
    if not isinstance(data, dict):
        raise ManifestError(
            [Problem(path, 1, "", "a manifest is a mapping of version, name, prompts, ...; this is not a mapping")]
        )
    _normalize(data)
    checker = _Checker(path, document)
    # Before the other checks, so that two names of one picture count as one value.
    local_images = inputs.resolve(data, base_dir or FsPath(path).parent, checker.add)
    checker.schema(data)
    checker.semantics(data)
    if checker.problems:
        raise ManifestError(checker.problems)
    return _build(path, text, document, data, local_images)


def normalize_value(name: str, value: Any) -> Any:
    """A promptObject value as it is sent: integral floats as ints, enum strings as strings."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    spec = schemas.prompt_fields().get(name, {})
    if spec.get("type") == "string" and "enum" in spec:
        return str(value)
    return value


def _normalize(data: dict[str, Any]) -> None:
    for _, fields in _field_paths(data):
        for name, value in fields.items():
            fields[name] = normalize_value(name, value)
    for key in ("sweep", "zip"):
        axes = data.get(key)
        if isinstance(axes, dict):
            for name, values in axes.items():
                if isinstance(values, list):
                    values[:] = [normalize_value(name, v) for v in values]
    if isinstance(data.get("seeds"), list):
        data["seeds"] = [normalize_value("seed", s) for s in data["seeds"]]


class _Checker:
    def __init__(self, file: str, document: Document) -> None:
        self.file = file
        self.document = document
        self.problems: list[Problem] = []

    def add(self, path: Sequence[PathPart], message: str) -> None:
        self.problems.append(Problem(self.file, self.document.line_of(path), format_path(path), message))

    # -- what the schema says ---------------------------------------------------------------

    def schema(self, data: dict[str, Any]) -> None:
        for error in schemas.errors("manifest", data):
            self._report(error, tuple(error.absolute_path))

    def _report(self, error: ValidationError, path: Path) -> None:
        for where, message in explain(error, path):
            self.add(where, message)

    def _check_value(self, path: Path, name: str, value: Any) -> bool:
        """Check one promptObject value against the provider's table; report and say if valid."""
        before = len(self.problems)
        for error in schemas.errors("prompt-object", {name: value}, "/$defs/fields"):
            self._report(error, path)
        return len(self.problems) == before

    # -- what no schema can say -------------------------------------------------------------

    def semantics(self, data: dict[str, Any]) -> None:
        if "seeds" in data and "repeats" in data:
            self.add(("repeats",), "use either seeds (a list) or repeats (a count), not both")
        for fields_path, fields in _field_paths(data):
            for name in fields:
                if name in _RESERVED_FIELDS:
                    self.add((*fields_path, name), f"{name} cannot be set here: {_RESERVED_FIELDS[name]}")
        axes = self._axes(data)
        self._zip_lengths(data)
        prompts = data.get("prompts")
        if isinstance(prompts, list):
            self._prompt_ids(prompts)
            for index, prompt in enumerate(prompts):
                if isinstance(prompt, dict):
                    self._prompt(index, prompt, axes)
        if isinstance(data.get("seeds"), list):
            self._distinct(("seeds",), data["seeds"])

    def _axes(self, data: dict[str, Any]) -> set[str]:
        """Check every sweep and zip value; return the fields they set."""
        named: dict[str, str] = {}
        for key in ("sweep", "zip"):
            axes = data.get(key)
            if not isinstance(axes, dict):
                continue
            for name, values in axes.items():
                if name in _RESERVED_FIELDS:
                    self.add((key, name), f"{name} cannot be swept: {_RESERVED_FIELDS[name]}")
                    continue
                if name in named:
                    self.add((key, name), f"{name} is already in {named[name]}: a field is swept once")
                    continue
                named[name] = key
                if not isinstance(values, list):
                    continue
                if name not in schemas.prompt_fields():
                    sweepable = [f for f in schemas.prompt_fields() if f not in _RESERVED_FIELDS]
                    self.add((key, name), f"unknown field{did_you_mean(name, sweepable)}")
                    continue
                for i, value in enumerate(values):
                    self._check_value((key, name, i), name, value)
                if key == "sweep":
                    self._distinct((key, name), values)
        return set(named)

    def _zip_lengths(self, data: dict[str, Any]) -> None:
        axes = data.get("zip")
        if not isinstance(axes, dict):
            return
        lists = [(name, values) for name, values in axes.items() if isinstance(values, list)]
        if not lists:
            return
        first_name, first = lists[0]
        for name, values in lists[1:]:
            if len(values) != len(first):
                self.add(
                    ("zip", name),
                    f"has {len(values)} values but zip.{first_name} has {len(first)}: "
                    "zip pairs its lists element by element, so they need equal lengths",
                )
        if all(len(values) == len(first) for _, values in lists):
            tuples = [tuple(values[i] for _, values in lists) for i in range(len(first))]
            for i, j in _repeats(tuples):
                pairs = ", ".join(f"{name}={render(v)}" for (name, _), v in zip(lists, tuples[j], strict=True))
                self.add(
                    ("zip", first_name, j),
                    f"zip entry {j} ({pairs}) repeats entry {i}: the same request would be paid for twice",
                )

    def _prompt_ids(self, prompts: list[Any]) -> None:
        # Ids name directories, and some file systems ignore case: 'City' and 'city' collide.
        seen: dict[str, int] = {}
        for index, prompt in enumerate(prompts):
            if not isinstance(prompt, dict) or not isinstance(prompt.get("id"), str):
                continue
            key = prompt["id"].lower()
            if key in seen:
                other = seen[key]
                self.add(
                    ("prompts", index, "id"),
                    f"{prompt['id']!r} is already the id of prompts[{other}] "
                    f"(line {self.document.line_of(('prompts', other, 'id'))}); ids are unique, ignoring case",
                )
            else:
                seen[key] = index

    def _prompt(self, index: int, prompt: dict[str, Any], swept: set[str]) -> None:
        at: Path = ("prompts", index)
        params = prompt.get("params")
        if "image_prompt" in prompt and isinstance(params, dict) and "image_prompt" in params:
            self.add((*at, "image_prompt"), "image_prompt is given both here and in params; keep one")
        text, variables = prompt.get("prompt"), prompt.get("vars")
        if not isinstance(text, str):
            return
        try:
            template = Template.parse(text)
        except TemplateError as exc:
            self.add((*at, "prompt"), str(exc))
            return
        names = variables if isinstance(variables, dict) else {}
        for name in dict.fromkeys(template.names):
            if name not in names:
                self.add(
                    (*at, "prompt"),
                    f"placeholder {{{name}}} has no var: add vars: {{{name}: [...]}}, "
                    f"or write {{{{{name}}}}} for the braces themselves",
                )
        for name, values in names.items():
            if name not in template.names:
                self.add(
                    (*at, "vars", name),
                    f"var {name!r} is not used: write {{{name}}} in the prompt text, or remove the var",
                )
            elif isinstance(values, list):
                self._distinct((*at, "vars", name), values)

    def _distinct(self, path: Path, values: list[Any]) -> None:
        for i, j in _repeats(values):
            self.add(
                (*path, j),
                f"{show(values[j])} is listed twice ({format_path((*path, i))} too): the same request would be paid for twice",
            )


def _field_paths(data: dict[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
    if isinstance(data.get("defaults"), dict):
        yield ("defaults",), data["defaults"]
    prompts = data.get("prompts")
    for index, prompt in enumerate(prompts if isinstance(prompts, list) else []):
        if isinstance(prompt, dict) and isinstance(prompt.get("params"), dict):
            yield ("prompts", index, "params"), prompt["params"]


def _repeats(values: Sequence[Any]) -> Iterator[tuple[int, int]]:
    """(first index, later index) of every value equal to an earlier one, as JSON sees equality."""
    first: dict[Any, int] = {}
    for j, value in enumerate(values):
        key = _identity(value)
        if key in first:
            yield first[key], j
        else:
            first.setdefault(key, j)


def _identity(value: Any) -> Any:
    # true and 1 are different JSON values though Python finds them equal.
    if isinstance(value, tuple):
        return tuple(_identity(v) for v in value)
    return (type(value) is bool, value) if isinstance(value, int | float | str | bool) else repr(value)


def _build(path: str, text: str, document: Document, data: dict[str, Any], local_images: dict[str, FsPath]) -> Manifest:
    prompts = []
    for index, raw in enumerate(data["prompts"]):
        fields = dict(raw.get("params") or {})
        if "image_prompt" in raw:
            fields["image_prompt"] = raw["image_prompt"]
        prompts.append(
            PromptSpec(
                index=index,
                id=raw["id"],
                template=Template.parse(raw["prompt"]),
                vars=tuple((name, tuple(values)) for name, values in (raw.get("vars") or {}).items()),
                fields=fields,
                line=document.line_of(("prompts", index)),
            )
        )
    seeds = data.get("seeds")
    return Manifest(
        path=path,
        text=text,
        name=data["name"],
        defaults=dict(data.get("defaults") or {}),
        prompts=tuple(prompts),
        sweep=tuple((name, tuple(values)) for name, values in (data.get("sweep") or {}).items()),
        zip=tuple((name, tuple(values)) for name, values in (data.get("zip") or {}).items()),
        seeds=tuple(seeds) if seeds is not None else None,
        repeats=len(seeds) if seeds is not None else int(data.get("repeats", 1)),
        seed_base=int(data.get("seed_base", 0)),
        run=dict(data.get("run") or {}),
        local_images=local_images,
        document=document,
    )
