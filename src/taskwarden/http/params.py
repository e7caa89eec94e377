"""Elasticsearch's REST query-parameter grammar: booleans, time values, ints, lists, unknown names.

Error texts are Elasticsearch's own (``RestRequest.paramAs*`` and ``BaseRestHandler.unrecognized``)
so that clients matching on them behave the same against taskwarden.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Collection, Sequence
from typing import overload

from taskwarden.errors import IllegalArgumentError, NumberFormatError
from taskwarden.timevalue import format_time_value, parse_time_value

__all__ = ["COMMON_PARAMS", "RequestParams", "similarity", "unrecognized_message"]

# What every ES request consumes (the channel reads format, filter_path, pretty and human;
# the controller error_trace), so they are accepted and offered as "did you mean" everywhere.
COMMON_PARAMS = frozenset({"pretty", "human", "error_trace", "filter_path", "format"})

_JAVA_INT_MIN = -(2**31)
_JAVA_INT_MAX = 2**31 - 1
# Integer.parseInt: optional sign, then decimal digits (Java accepts any Unicode Nd digit, as \d does).
_INT_TEXT = re.compile(r"[+-]?\d+")


class RequestParams:
    """Query parameters of one request; every read marks the name consumed.

    A parameter given more than once keeps its last value, as Elasticsearch's query decoder does.
    """

    def __init__(
        self, path: builtins.str, query: Sequence[tuple[builtins.str, builtins.str]],
        allowed: Collection[builtins.str],
    ) -> None:
        self.path = path
        self._values: dict[builtins.str, builtins.str] = {}
        for name, value in query:
            self._values[name] = value
        self._consumed: set[builtins.str] = set()
        unknown = [
            name for name in self._values if name not in allowed and name not in COMMON_PARAMS
        ]
        if unknown:
            known = COMMON_PARAMS.union(allowed)
            raise IllegalArgumentError(unrecognized_message(path, unknown, known))

    @property
    def consumed(self) -> frozenset[builtins.str]:
        """Names the handler has read so far."""
        return frozenset(self._consumed)

    def _raw(self, name: builtins.str) -> builtins.str | None:
        self._consumed.add(name)
        return self._values.get(name)

    def has(self, name: builtins.str) -> builtins.bool:
        return self._raw(name) is not None

    @overload
    def str(self, name: builtins.str, default: builtins.str) -> builtins.str: ...

    @overload
    def str(
        self, name: builtins.str, default: builtins.str | None = None
    ) -> builtins.str | None: ...

    def str(
        self, name: builtins.str, default: builtins.str | None = None
    ) -> builtins.str | None:
        raw = self._raw(name)
        return default if raw is None else raw

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        """``true``/``false``; the bare name (empty value) means true, anything else is a 400."""
        raw = self._raw(name)
        if raw is None:
            return default
        return parse_boolean(raw)

    def time_nanos(
        self, name: builtins.str, default: builtins.int | None, *,
        max_nanos: builtins.int | None = None,
    ) -> builtins.int | None:
        """A time value in nanoseconds; ``-1`` (no limit) is returned as -1 whatever the maximum."""
        raw = self._raw(name)
        if raw is None:
            return default
        nanos = parse_time_value(raw, name)
        if max_nanos is not None and nanos > max_nanos:
            raise IllegalArgumentError(
                f"[{name}] must be at most [{format_time_value(max_nanos)}] but was [{raw}]"
            )
        return nanos

    def int(
        self, name: builtins.str, default: builtins.int, *,
        min_value: builtins.int, max_value: builtins.int,
    ) -> builtins.int:
        """A Java ``int`` (``Integer.parseInt`` grammar) within ``[min_value, max_value]``."""
        raw = self._raw(name)
        if raw is None:
            return default
        value = _parse_java_int(raw)
        if value is None:
            raise IllegalArgumentError(
                f"Failed to parse int parameter [{name}] with value [{raw}]",
                caused_by=NumberFormatError(f'For input string: "{raw}"'),
            )
        if value < min_value:
            raise IllegalArgumentError(f"[{name}] must be at least [{min_value}] but was [{raw}]")
        if value > max_value:
            raise IllegalArgumentError(f"[{name}] must be at most [{max_value}] but was [{raw}]")
        return value

    def list(self, name: builtins.str) -> builtins.list[builtins.str]:
        """Comma-separated values, blank items dropped (items are not trimmed, as in ES)."""
        raw = self._raw(name)
        if raw is None:
            return []
        return [item for item in raw.split(",") if item.strip()]

    def choice(
        self, name: builtins.str, default: builtins.str, choices: Sequence[builtins.str]
    ) -> builtins.str:
        """One of ``choices`` (case-sensitive); otherwise a 400 in ES's wording."""
        value = self.str(name, default)
        if value not in choices:
            raise IllegalArgumentError(
                f"[{name}] must be one of {_one_of(choices)} but was [{value}]"
            )
        return value

    @property
    def pretty(self) -> builtins.bool:
        return self.bool("pretty", False)

    @property
    def human(self) -> builtins.bool:
        return self.bool("human", False)

    @property
    def error_trace(self) -> builtins.bool:
        return self.bool("error_trace", False)

    @property
    def filter_path(self) -> builtins.list[builtins.str]:
        """``filter_path`` expressions, trimmed (``Strings.tokenizeByCommaToSet``)."""
        return [item.strip() for item in self.list("filter_path")]


def parse_boolean(raw: str) -> bool:
    """``Booleans.parseBoolean`` plus the REST rule that an empty value means true."""
    if raw in ("", "true"):
        return True
    if raw == "false":
        return False
    raise IllegalArgumentError(
        f"Failed to parse value [{raw}] as only [true] or [false] are allowed."
    )


def _parse_java_int(raw: str) -> int | None:
    if _INT_TEXT.fullmatch(raw) is None:
        return None
    value = int(raw)
    return value if _JAVA_INT_MIN <= value <= _JAVA_INT_MAX else None


def _one_of(choices: Sequence[str]) -> str:
    quoted = [f"[{c}]" for c in choices]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def unrecognized_message(path: str, unknown: Collection[str], candidates: Collection[str]) -> str:
    """``BaseRestHandler.unrecognized``: sorted names, each with its close candidates."""
    names = sorted(set(unknown))
    plural = "s" if len(names) > 1 else ""
    parts = []
    for name in names:
        scored = [(similarity(name, c), c) for c in set(candidates)]
        close = [c for score, c in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0.5]
        part = f"[{name}]"
        if len(close) == 1:
            part += f" -> did you mean [{close[0]}]?"
        elif close:
            part += f" -> did you mean any of [{', '.join(close)}]?"
        parts.append(part)
    return f"request [{path}] contains unrecognized parameter{plural}: " + ", ".join(parts)


def similarity(target: str, other: str) -> float:
    """Lucene's ``LevenshteinDistance.getDistance``: 1 - edits / longer length (1.0 = equal)."""
    if not target or not other:
        return 1.0 if target == other else 0.0
    previous = list(range(len(target) + 1))
    for j, other_char in enumerate(other, 1):
        current = [j]
        for i, target_char in enumerate(target, 1):
            cost = 0 if target_char == other_char else 1
            current.append(min(current[i - 1] + 1, previous[i] + 1, previous[i - 1] + cost))
        previous = current
    return 1.0 - previous[-1] / max(len(target), len(other))
