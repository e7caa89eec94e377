"""Elasticsearch time values: ``30s``, ``500ms``, ``-1``; parsed to and printed from nanoseconds."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from taskwarden.errors import IllegalArgumentError, ParseError

__all__ = ["format_time_value", "parse_time_value"]

_NANOS = {
    "nanos": 1,
    "micros": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "d": 86400 * 1_000_000_000,
}
# Longest suffix first so that "ms" is not read as "m" + "s" and "nanos" not as "s".
_SUFFIXES = sorted(_NANOS, key=len, reverse=True)
_DISPLAY = [("d", _NANOS["d"]), ("h", _NANOS["h"]), ("m", _NANOS["m"]), ("s", _NANOS["s"]),
            ("ms", _NANOS["ms"]), ("micros", _NANOS["micros"])]


def parse_time_value(raw: str, setting: str) -> int:
    """Nanoseconds for ``raw``; ``-1`` stays -1 (no limit). Errors read as Elasticsearch's."""
    text = raw.strip().lower()
    if text in ("-1", "0"):
        return int(text)
    for suffix in _SUFFIXES:
        if text.endswith(suffix):
            number = text[: -len(suffix)].strip()
            unit = _NANOS[suffix]
            break
    else:
        raise IllegalArgumentError(
            f"failed to parse setting [{setting}] with value [{raw}] as a time value: "
            "unit is missing or unrecognized"
        )
    try:
        if not number or number.strip() != number or "_" in number:
            raise ValueError(number)
        value = int(number, 10)
    except ValueError:
        try:
            float(number)
        except ValueError:
            raise ParseError(f"failed to parse [{raw}]") from None
        raise ParseError(
            f"failed to parse [{raw}], fractional time values are not supported"
        ) from None
    if value < -1:
        raise IllegalArgumentError(
            f"failed to parse setting [{setting}] with value [{raw}] as a time value: "
            "negative durations are not supported"
        )
    if value == -1:
        return -1
    return value * unit


def format_time_value(nanos: int) -> str:
    """Largest unit with a value of at least 1, one decimal at most: ``1.2s``, ``236micros``."""
    if nanos < 0:
        return str(nanos)
    for suffix, unit in _DISPLAY:
        if nanos >= unit:
            value = (Decimal(nanos) / Decimal(unit)).quantize(Decimal("0.1"), ROUND_HALF_UP)
            text = format(value, "f")
            if text.endswith(".0"):
                text = text[:-2]
            return text + suffix
    return f"{nanos}nanos"
