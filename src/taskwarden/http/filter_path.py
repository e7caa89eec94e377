"""Elasticsearch's ``filter_path`` response filtering: dotted paths, ``*``, ``**`` and ``-`` excludes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from taskwarden.tasks.filters import simple_match

__all__ = ["apply_filter_path"]

_Path = tuple[str, ...]
_MISSING = object()
# Marks a ``**`` that has already taken at least one key (ES: ``**`` spans one or more levels).
_WITHIN = "\x00**"


def apply_filter_path(body: Any, expressions: Sequence[str]) -> Any:
    """Drop the fields the ``-`` excludes name, then keep only those the includes name (ES's order).

    Objects, arrays and array elements left empty by the filtering disappear; ones that were empty
    to begin with stay when excluding (ES drops those too, elastic/elasticsearch#63842, a bug).
    A body nothing matches becomes ``{}``. Non-object bodies (text, bytes) pass through untouched.
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
    if excludes:
        result = _exclude(result, excludes)
        if result is _MISSING:
            result = {}
    if includes:
        result = _include(result, includes)
        if result is _MISSING:
            result = {}
    return result


def _split(expression: str) -> _Path:
    """``FilterPath`` parsing: split at dots, except escaped ones (``\\.``) and a leading one."""
    parts: list[str] = []
    rest = expression
    while True:
        split, escaped, i = -1, False, 0
        while i < len(rest):
            if rest[i] == ".":
                split = i
                break
            if rest[i] == "\\" and rest[i + 1 : i + 2] == ".":
                i += 1
                escaped = True
            i += 1
        field = rest[:split] if split > 0 else rest
        # Java's replaceAll("\\\\.", "."): a backslash and the character after it become a dot.
        parts.append(re.sub(r"\\.", ".", field, flags=re.S) if escaped else field)
        if split <= 0:
            return tuple(parts)
        rest = rest[split + 1 :]


def _advance(patterns: Sequence[_Path], key: str) -> tuple[bool, list[_Path]]:
    """Whether ``key`` completes a pattern, and the patterns left for its children."""
    complete = False
    rest: list[_Path] = []
    for pattern in patterns:
        if not pattern:
            continue
        head = pattern[0]
        if head == _WITHIN:
            rest.append(pattern)  # the ``**`` may swallow this key too...
            done, deeper = _advance([pattern[1:]], key)  # ...or the rest of the path starts here
            complete = complete or done
            rest.extend(deeper)
        elif head == "**":
            tail = pattern[1:]
            if not tail:
                complete = True
                continue
            rest.append((_WITHIN, *tail))  # ``**`` takes this key: it spans at least one level
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
    """``value`` without the excluded fields; ``_MISSING`` when that emptied an object or array."""
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, child in value.items():
            complete, rest = _advance(patterns, str(key))
            if complete:
                continue
            filtered = _exclude(child, rest) if rest else child
            if filtered is not _MISSING:
                kept[key] = filtered
        return _MISSING if value and not kept else kept
    if isinstance(value, list):
        items = [_exclude(item, patterns) for item in value]
        kept_items = [item for item in items if item is not _MISSING]
        return _MISSING if value and not kept_items else kept_items
    return value
