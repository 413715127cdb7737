"""Payload mutations for "malformed input never leaks a bare exception" tests."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from rxconnector.errors import ParseError

#: Values that break a field in every way a decoded JSON frame can: wrong type,
#: empty, non-numeric text, null, container instead of scalar.
BAD_VALUES: tuple[Any, ...] = (None, "", "abc", [], {}, True, [["1"]], 1.5)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


def mutations(payload: Any) -> Iterator[tuple[str, Any]]:
    """Every copy of ``payload`` with one field deleted or replaced by a bad value."""
    for path in list(_paths(payload)):
        for bad in ("<deleted>", *BAD_VALUES):
            mutated = copy.deepcopy(payload)
            parent = mutated
            for step in path[:-1]:
                parent = parent[step]
            if bad == "<deleted>":
                del parent[path[-1]]
            else:
                parent[path[-1]] = bad
            yield f"{'/'.join(map(str, path))}={bad!r}", mutated
    for top in (None, [], "text", 42):
        yield f"payload={top!r}", top


def assert_parses_or_parse_error(parse: Callable[[Any, float], Any], payload: Any) -> int:
    """Run ``parse`` on every mutation; only a result or ParseError is acceptable.

    Returns how many mutations were rejected with ParseError (so callers can check the
    parser is not simply ignoring everything).
    """
    rejected = 0
    for label, mutated in mutations(payload):
        try:
            parse(mutated, 1.0)
        except ParseError as exc:
            assert exc.excerpt, label
            rejected += 1
        except Exception as exc:  # pragma: no cover - the failure we are looking for
            raise AssertionError(f"{label}: leaked {type(exc).__name__}: {exc}") from exc
    return rejected
