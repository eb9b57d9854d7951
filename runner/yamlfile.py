"""Safe YAML that remembers where every value came from.

A manifest is parsed once into a node tree (for line numbers) and constructed into plain data
with PyYAML's safe constructors, so tags that build objects are refused and nothing executes.
Plain scalars follow YAML 1.2's core schema instead of PyYAML's YAML 1.1 one: `16:9` and
`06:30` are not sexagesimal numbers, `yes`/`no`/`on`/`off` are not booleans, `011` is not octal
and `2026-01-01` is not a date. Those YAML 1.1 readings would silently change a manifest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

PathPart = str | int
Path = tuple[PathPart, ...]

# A manifest's values, counted as they would be with every alias expanded. A real manifest has
# hundreds; a "billion laughs" of nested aliases has billions, and every later step (checks,
# messages that quote a value) would walk them all.
MAX_NODES = 200_000

_YAML11_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "timestamp")}
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _YAML11_TAGS]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+)$"),
    list("-+0123456789."),
)


@dataclass(frozen=True, slots=True)
class YamlError:
    line: int | None
    message: str


@dataclass(frozen=True, slots=True)
class Document:
    """Parsed data with the node tree it came from, to locate any path in the file."""

    data: Any
    root: Node | None

    def line_of(self, path: Sequence[PathPart]) -> int | None:
        """1-based line of the value at `path`, or of its deepest ancestor present in the file."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in path:
            if isinstance(node, MappingNode):
                entry = _last_entry(node, part)
                if entry is None:
                    return line
                key, node = entry
                line = key.start_mark.line + 1
            elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line


def parse(text: str) -> tuple[Document | None, list[YamlError]]:
    """Parse one YAML document safely; on failure, the errors say where and why."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        size = _expanded_size(root) if root is not None else 0
        if size > MAX_NODES:
            message = (
                f"the manifest expands to more than {MAX_NODES:,} values once its aliases are filled in; "
                "a manifest that large (or an alias nested in aliases) is refused"
            )
            return None, [YamlError(None, message)]
        # Duplicate keys are a user's mistake that YAML forgives silently: look before the
        # constructor flattens merge keys into the mappings.
        duplicates = list(_duplicate_keys(root)) if root is not None else []
        if duplicates:
            return None, duplicates
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        return None, [_describe_yaml_error(exc)]
    except yaml.YAMLError as exc:
        return None, [YamlError(None, f"YAML error: {exc}")]
    except (RecursionError, _Cycle):
        return None, [YamlError(None, "YAML nests too deeply, or an alias refers to itself")]
    finally:
        loader.dispose()
    return Document(data, root), []


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> YamlError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    problem = exc.problem or "cannot be parsed"
    tag = re.search(r"for the tag '([^']*)'", problem)
    if isinstance(exc, yaml.constructor.ConstructorError) and tag:
        shown = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        return YamlError(line, f"the YAML tag {shown} is not allowed: a manifest holds plain data only")
    problem = problem.removeprefix("but ")
    if exc.context and exc.context not in problem:
        problem = f"{problem} ({exc.context})"
    return YamlError(line, f"YAML syntax error: {problem}{_hint(problem)}")


def _hint(problem: str) -> str:
    """What to do about the YAML mistakes people make most."""
    if "'\\t'" in problem:
        return "; YAML indents with spaces, not tabs"
    if "mapping values are not allowed here" in problem:
        return "; quote a value that contains ': ', e.g. prompt: \"A photo: a cat\""
    return ""


class _Cycle(Exception):
    pass


def _expanded_size(root: Node) -> int:
    """How many nodes the document holds with every alias expanded (a node an alias points to
    counts once per reference), computed over the shared node graph and capped past MAX_NODES."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done:
            visiting.discard(id(node))
            sizes[id(node)] = min(MAX_NODES + 1, 1 + sum(sizes[id(child)] for child in children))
            continue
        if id(node) in visiting:
            raise _Cycle
        visiting.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in visiting:
                raise _Cycle
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _duplicate_keys(root: Node) -> Iterator[YamlError]:
    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first_line: dict[str, int] = {}
            for key, value in node.value:
                stack.append(value)
                if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                line = key.start_mark.line + 1
                if key.value in first_line:
                    yield YamlError(
                        line,
                        f"key {key.value!r} appears twice (lines {first_line[key.value]} and {line}); "
                        "YAML would keep only the last one",
                    )
                else:
                    first_line[key.value] = line
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


def _last_entry(node: MappingNode, part: PathPart) -> tuple[Node, Node] | None:
    # After construction merge keys are flattened into node.value with the mapping's own keys
    # last, and the constructor keeps the last of equal keys: so does this lookup.
    found = None
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.tag != _MERGE_TAG and key.value == str(part):
            found = (key, value)
    return found
