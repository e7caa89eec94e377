"""Elasticsearch time values: ``30s``, ``500ms``, ``-1``; parsed to and printed from nanoseconds."""

from __future__ import annotations

import re

from taskwarden.errors import IllegalArgumentError, NumberFormatError

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
# TimeValue.parseTimeValue's order: "ms" before "s"; "m" is tested on the raw text (``1M`` is not minutes).
_SUFFIXES = ("nanos", "micros", "ms", "s", "m", "h", "d")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
# Java's String.trim() strips every char <= ' ' (Python's strip() is a different set).
_JAVA_TRIM = "".join(map(chr, range(0x21)))
# Long.parseLong: optional sign, then digits (Character.digit accepts any Unicode Nd digit, as \d does).
_JAVA_LONG = re.compile(r"[+-]?\d+")
# Double.parseDouble on lower-cased text (so never "NaN"/"Infinity"): decimal or hex, optional f/d.
_JAVA_DOUBLE = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)p[+-]?\d+)[fd]?",
    re.ASCII,
)
_DISPLAY = [("d", _NANOS["d"]), ("h", _NANOS["h"]), ("m", _NANOS["m"]), ("s", _NANOS["s"]),
            ("ms", _NANOS["ms"]), ("micros", _NANOS["micros"])]


def parse_time_value(raw: str, setting: str) -> int:
    """Nanoseconds for ``raw``; ``-1`` stays -1 (no limit). Errors read as Elasticsearch's."""
    text = raw.lower().strip(_JAVA_TRIM)
    for suffix in _SUFFIXES:
        if (raw if suffix == "m" else text).endswith(suffix):
            value = _parse_number(raw, text[: -len(suffix)].strip(_JAVA_TRIM), setting)
            return -1 if value == -1 else value * _NANOS[suffix]
    if re.fullmatch(r"-0*1", text):
        return -1
    if re.fullmatch(r"0+", text):
        return 0
    raise IllegalArgumentError(
        f"failed to parse setting [{setting}] with value [{raw}] as a time value: "
        "unit is missing or unrecognized"
    )


def _parse_number(raw: str, number: str, setting: str) -> int:
    """``TimeValue.parse``: a Java long, else a 400 that says whether it looked fractional."""
    value: int | None = None
    if _JAVA_LONG.fullmatch(number):
        try:
            value = int(number, 10)
        except ValueError:  # more digits than Python converts; no Java long has that many
            value = None
    if value is None or not _LONG_MIN <= value <= _LONG_MAX:
        cause = NumberFormatError(f'For input string: "{number}"')
        if _JAVA_DOUBLE.fullmatch(number):
            raise IllegalArgumentError(
                f"failed to parse [{raw}], fractional time values are not supported", caused_by=cause
            )
        raise IllegalArgumentError(f"failed to parse [{raw}]", caused_by=cause)
    if value < -1:
        raise IllegalArgumentError(
            f"failed to parse setting [{setting}] with value [{raw}] as a time value: "
            "negative durations are not supported"
        )
    return value


def format_time_value(nanos: int) -> str:
    """``TimeValue.toString()``: largest unit reaching 1, one decimal truncated (not rounded): ``1.9s``."""
    if nanos < 0:
        return str(nanos)
    if nanos == 0:
        return "0s"
    suffix, unit = next(((s, u) for s, u in _DISPLAY if nanos >= u), ("nanos", 1))
    # Java's Double.toString and Python's repr agree for values in [1, 1e7), all a long can reach.
    whole, _, fraction = repr(float(nanos) / unit).partition(".")
    if fraction[:1] not in ("", "0"):
        return f"{whole}.{fraction[0]}{suffix}"
    return whole + suffix
