"""Reading YAML node by node, so that errors can name the line (policies, deployment specs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

__all__ = ["mapping_items", "node_line", "node_value"]


def node_line(node: yaml.Node | None) -> int:
    """The 1-based line a node starts on (1 when there is no node)."""
    return node.start_mark.line + 1 if node is not None else 1


def node_value(node: yaml.Node) -> Any:
    """A node's value as YAML would load it."""
    return yaml.safe_load(yaml.serialize(node))


def mapping_items(
    source: str,
    node: yaml.Node,
    what: str,
    fail: Callable[[str, yaml.Node | None, str], Exception],
) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """``(key, key node, value node)`` of a mapping with plain, unique keys; ``fail(source,
    node, message)`` makes the error raised otherwise."""
    if not isinstance(node, yaml.MappingNode):
        raise fail(source, node, f"{what} must be a mapping of keys to values")
    out: list[tuple[str, yaml.Node, yaml.Node]] = []
    seen: set[str] = set()
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise fail(source, key, f"{what}: keys must be plain words")
        name = str(key.value)
        if name in seen:
            raise fail(source, key, f"{what}: {name!r} appears twice")
        seen.add(name)
        out.append((name, key, value))
    return out
