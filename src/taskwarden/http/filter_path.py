"""Elasticsearch's ``filter_path`` response filtering: dotted paths, ``*``, ``**`` and ``-`` excludes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskwarden.tasks.filters import simple_match

__all__ = ["apply_filter_path"]

_Path = tuple[str, ...]
_MISSING = object()


def apply_filter_path(body: Any, expressions: Sequence[str]) -> Any:
    """Keep only the fields the includes name, then drop those the ``-`` excludes name.

    Objects and arrays left empty by the includes disappear; a body nothing matches becomes ``{}``.
    Non-object bodies (text, bytes) pass through untouched.
    """
    if not isinstance(body, dict):
        return body
    includes: list[_Path] = []
    excludes: list[_Path] = []
    for expression in expressions:
        text = expression.strip()
        if not text:
            continue
        if text.startswith("-"):
            if text[1:]:
                excludes.append(_split(text[1:]))
        else:
            includes.append(_split(text))
    result: Any = body
    if includes:
        result = _include(body, includes)
        if result is _MISSING:
            result = {}
    if excludes:
        result = _exclude(result, excludes)
    return result


def _split(expression: str) -> _Path:
    return tuple(part for part in expression.split(".") if part)


def _advance(patterns: Sequence[_Path], key: str) -> tuple[bool, list[_Path]]:
    """Whether ``key`` completes a pattern, and the patterns left for its children."""
    complete = False
    rest: list[_Path] = []
    for pattern in patterns:
        if not pattern:
            continue
        head = pattern[0]
        if head == "**":
            rest.append(pattern)  # ``**`` may swallow this key and more
            tail = pattern[1:]
            if not tail:
                complete = True
                continue
            done, deeper = _advance([tail], key)
            complete = complete or done
            rest.extend(deeper)
        elif simple_match(head, key):
            if len(pattern) == 1:
                complete = True
            else:
                rest.append(pattern[1:])
    return complete, rest


def _include(value: Any, patterns: Sequence[_Path]) -> Any:
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, child in value.items():
            complete, rest = _advance(patterns, str(key))
            if complete:
                kept[key] = child
            elif rest:
                filtered = _include(child, rest)
                if filtered is not _MISSING:
                    kept[key] = filtered
        return kept if kept else _MISSING
    if isinstance(value, list):
        items = [_include(item, patterns) for item in value]
        kept_items = [item for item in items if item is not _MISSING]
        return kept_items if kept_items else _MISSING
    return _MISSING


def _exclude(value: Any, patterns: Sequence[_Path]) -> Any:
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, child in value.items():
            complete, rest = _advance(patterns, str(key))
            if complete:
                continue
            kept[key] = _exclude(child, rest) if rest else child
        return kept
    if isinstance(value, list):
        return [_exclude(item, patterns) for item in value]
    return value
