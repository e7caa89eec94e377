"""REST parameter grammar: booleans, time values, Java ints, lists, choices, unknown names.

Messages are Elasticsearch's own (``RestRequest.paramAs*``, ``TimeValue.parseTimeValue``,
``BaseRestHandler.unrecognized``, ``TaskId(String)``), checked text for text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from taskwarden.errors import IllegalArgumentError, NumberFormatError, TaskwardenError
from taskwarden.http.params import (
    COMMON_PARAMS,
    RequestParams,
    parse_boolean,
    similarity,
    unrecognized_message,
)
from taskwarden.tasks.ids import EMPTY_TASK_ID, TaskId
from taskwarden.timevalue import format_time_value, parse_time_value

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
NANOS = {
    "nanos": 1,
    "micros": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
LIST_PARAMS = (
    "actions", "detailed", "group_by", "nodes", "parent_task_id", "timeout", "wait_for_completion",
)
PROPERTY = settings(database=None, max_examples=300, deadline=None)


def params(query: str | Sequence[tuple[str, str]] = (), allowed: Sequence[str] = LIST_PARAMS,
           path: str = "/_tasks") -> RequestParams:
    """Build RequestParams from ``a=1&b`` (a bare name has the empty value, as in a URL)."""
    if isinstance(query, str):
        split = (part.partition("=") for part in query.split("&"))
        query = [(name, value) for name, _, value in split if name]
    return RequestParams(path, query, allowed)


def reason_of(call: Callable[[], Any]) -> str:
    with pytest.raises(IllegalArgumentError) as info:
        call()
    assert info.value.http_status == 400
    return info.value.reason


# --------------------------------------------------------------------------------------------
# booleans


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("false", False), ("", True)])
def test_boolean_values(raw: str, expected: bool) -> None:
    p = params([("detailed", raw)])
    assert p.bool("detailed", not expected) is expected


def test_bare_name_means_true_and_absent_means_default() -> None:
    p = params("detailed")
    assert p.bool("detailed", False) is True
    assert p.bool("wait_for_completion", False) is False
    assert p.bool("wait_for_completion", True) is True


@pytest.mark.parametrize("raw", ["True", "FALSE", "1", "0", "yes", "on", "off", " true", "true "])
def test_boolean_rejects_anything_else(raw: str) -> None:
    p = params([("detailed", raw)])
    assert reason_of(lambda: p.bool("detailed", False)) == (
        f"Failed to parse value [{raw}] as only [true] or [false] are allowed."
    )


def test_common_flags_read_as_booleans() -> None:
    p = params("pretty&human=true&error_trace=false")
    assert (p.pretty, p.human, p.error_trace) == (True, True, False)
    assert {"pretty", "human", "error_trace"} <= p.consumed
    with pytest.raises(IllegalArgumentError):
        _ = params("pretty=yes").pretty


@PROPERTY
@given(st.text())
@example("")
@example("true")
@example("false")
def test_parse_boolean_accepts_exactly_three_values(raw: str) -> None:
    if raw in ("", "true", "false"):
        assert parse_boolean(raw) is (raw != "false")
    else:
        with pytest.raises(IllegalArgumentError) as info:
            parse_boolean(raw)
        assert info.value.reason == f"Failed to parse value [{raw}] as only [true] or [false] are allowed."


# --------------------------------------------------------------------------------------------
# time values


@pytest.mark.parametrize(
    ("raw", "nanos"),
    [
        ("-1", -1),
        ("0", 0),
        ("00", 0),
        ("-01", -1),
        ("1nanos", 1),
        ("3micros", 3_000),
        ("30ms", 30_000_000),
        ("30s", 30_000_000_000),
        ("2m", 120_000_000_000),
        ("1h", 3_600_000_000_000),
        ("2d", 172_800_000_000_000),
        ("0s", 0),
        ("10S", 10_000_000_000),
        ("10MS", 10_000_000),
        ("1H", 3_600_000_000_000),
        (" 5s ", 5_000_000_000),
        ("5 s", 5_000_000_000),
        ("+5s", 5_000_000_000),
        ("-1s", -1),
    ],
)
def test_time_values(raw: str, nanos: int) -> None:
    assert params([("timeout", raw)]).time_nanos("timeout", None) == nanos
    assert parse_time_value(raw, "timeout") == nanos


def test_time_default_when_absent() -> None:
    assert params().time_nanos("timeout", 7) == 7
    assert params().time_nanos("timeout", None) is None


@pytest.mark.parametrize(
    "raw",
    ["", "5", "1", "-2", "10y", "1w", "abc", "s5", "1M", "5 m ", "1.5"],
)
def test_time_unit_missing_or_unrecognized(raw: str) -> None:
    # "1M": minutes are case-sensitive in ES ("M" would be months); "5 m " does not end in "m".
    assert reason_of(lambda: parse_time_value(raw, "timeout")) == (
        f"failed to parse setting [timeout] with value [{raw}] as a time value: "
        "unit is missing or unrecognized"
    )


@pytest.mark.parametrize("raw", ["-2s", "-10ms", "-5d"])
def test_time_negative_durations(raw: str) -> None:
    assert reason_of(lambda: parse_time_value(raw, "interval")) == (
        f"failed to parse setting [interval] with value [{raw}] as a time value: "
        "negative durations are not supported"
    )


@pytest.mark.parametrize(
    ("raw", "number"),
    [("1.5s", "1.5"), ("0.5ms", "0.5"), (".5h", ".5"), ("1e3s", "1e3"), ("99999999999999999999s",
                                                                          "99999999999999999999")],
)
def test_time_fractional(raw: str, number: str) -> None:
    with pytest.raises(IllegalArgumentError) as info:
        parse_time_value(raw, "timeout")
    err = info.value
    assert err.type == "illegal_argument_exception"
    assert err.reason == f"failed to parse [{raw}], fractional time values are not supported"
    assert isinstance(err.caused_by, NumberFormatError)
    assert err.caused_by.reason == f'For input string: "{number}"'


@pytest.mark.parametrize(
    ("raw", "number"), [("abcs", "abc"), ("s", ""), ("1_000ms", "1_000"), ("nans", "nan"), ("- 1s", "- 1")]
)
def test_time_not_a_number(raw: str, number: str) -> None:
    with pytest.raises(IllegalArgumentError) as info:
        parse_time_value(raw, "timeout")
    assert info.value.reason == f"failed to parse [{raw}]"
    assert info.value.caused_by is not None
    assert info.value.caused_by.reason == f'For input string: "{number}"'


def test_time_maximum() -> None:
    p = params([("timeout", "2h")])
    assert reason_of(lambda: p.time_nanos("timeout", None, max_nanos=NANOS["h"])) == (
        "[timeout] must be at most [1h] but was [2h]"
    )
    assert params([("timeout", "-1")]).time_nanos("timeout", None, max_nanos=NANOS["h"]) == -1
    assert params([("timeout", "1h")]).time_nanos("timeout", None, max_nanos=NANOS["h"]) == NANOS["h"]


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (-1, "-1"),
        (0, "0s"),
        (1, "1nanos"),
        (999, "999nanos"),
        (1_000, "1micros"),
        (1_500, "1.5micros"),
        (1_500_000, "1.5ms"),
        (1_960_000_000, "1.9s"),  # TimeValue truncates, it does not round
        (59_990_000_000, "59.9s"),
        (60_000_000_000, "1m"),
        (61_000_000_000, "1m"),
        (90_000_000_000, "1.5m"),
        (30_000_000_000, "30s"),
        (86_400_000_000_000, "1d"),
        (LONG_MAX, "106751.9d"),  # TimeValue's documented largest string
    ],
)
def test_format_time_value(nanos: int, text: str) -> None:
    assert format_time_value(nanos) == text


@PROPERTY
@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(sorted(NANOS)))
def test_time_value_with_unit_parses_to_its_nanos(amount: int, unit: str) -> None:
    assert parse_time_value(f"{amount}{unit}", "t") == amount * NANOS[unit]
    assert parse_time_value(f"{amount}{unit.upper() if unit != 'm' else unit}", "t") == amount * NANOS[unit]


@PROPERTY
@given(st.integers(min_value=0, max_value=2**40))
@example(0)
@example(60_000_000_000)
@example(61_000_000_000)
@example(1_999_999_999)
def test_formatted_time_value_parses_back_within_its_unit(nanos: int) -> None:
    text = format_time_value(nanos)
    unit = next(u for u in sorted(NANOS, key=len, reverse=True) if text.endswith(u))
    if "." in text:
        with pytest.raises(IllegalArgumentError, match="fractional time values are not supported"):
            parse_time_value(text, "t")
        whole, fraction = text[: -len(unit)].split(".")
        assert len(fraction) == 1 and fraction != "0"
        tenths = int(whole) * 10 + int(fraction)
        assert tenths * NANOS[unit] <= nanos * 10 < (tenths + 1) * NANOS[unit]
    else:
        back = parse_time_value(text, "t")
        assert back <= nanos < back + NANOS[unit]
        if nanos % NANOS[unit] == 0:
            assert back == nanos  # an exact multiple of its display unit round-trips


@PROPERTY
@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["d", "h", "m", "s", "ms", "micros"]))
def test_whole_multiples_round_trip_through_format(amount: int, unit: str) -> None:
    nanos = amount * NANOS[unit]
    text = format_time_value(nanos)
    shown = next(u for u in sorted(NANOS, key=len, reverse=True) if text.endswith(u))
    if "." not in text and nanos % NANOS[shown] == 0:
        assert parse_time_value(text, "t") == nanos
    if amount < 10 or (unit == "d" and amount < 10**5):
        assert "." not in text  # a small whole amount of one unit is shown exactly
        assert parse_time_value(text, "t") == nanos


# --------------------------------------------------------------------------------------------
# ints


@pytest.mark.parametrize(
    ("raw", "value"), [("3", 3), ("+7", 7), ("-0", 0), ("007", 7), ("2147483647", 2**31 - 1), ("0", 0)]
)
def test_int_java_grammar(raw: str, value: int) -> None:
    p = params([("threads", raw)], allowed=("threads",))
    assert p.int("threads", 3, min_value=-10, max_value=2**31 - 1) == value


@pytest.mark.parametrize(
    "raw", ["", "1.0", "1e3", " 1", "1 ", "1_000", "0x10", "abc", "2147483648", "-2147483649", "--1", "+"]
)
def test_int_rejects_what_integer_parse_int_rejects(raw: str) -> None:
    p = params([("threads", raw)], allowed=("threads",))
    with pytest.raises(IllegalArgumentError) as info:
        p.int("threads", 3, min_value=-(2**31), max_value=2**31 - 1)
    assert info.value.reason == f"Failed to parse int parameter [threads] with value [{raw}]"
    assert isinstance(info.value.caused_by, NumberFormatError)
    assert info.value.caused_by.type == "number_format_exception"
    assert info.value.caused_by.reason == f'For input string: "{raw}"'


def test_int_bounds_and_default() -> None:
    p = params([("threads", "0"), ("snapshots", "100")], allowed=("threads", "snapshots"))
    assert reason_of(lambda: p.int("threads", 3, min_value=1, max_value=10)) == (
        "[threads] must be at least [1] but was [0]"
    )
    assert reason_of(lambda: p.int("snapshots", 3, min_value=1, max_value=10)) == (
        "[snapshots] must be at most [10] but was [100]"
    )
    assert params(allowed=("threads",)).int("threads", 3, min_value=1, max_value=10) == 3


# --------------------------------------------------------------------------------------------
# lists, strings, choices, repeats


def test_lists_split_on_commas_and_drop_blanks() -> None:
    p = params([("actions", "a*,,b, c ,"), ("nodes", "")])
    assert p.list("actions") == ["a*", "b", " c "]  # items are not trimmed, as in ES
    assert p.list("nodes") == []
    assert p.list("parent_task_id") == []


def test_filter_path_items_are_trimmed() -> None:
    assert params([("filter_path", " a.b , -c ,,")]).filter_path == ["a.b", "-c"]


def test_last_value_of_a_repeated_parameter_wins() -> None:
    p = params([("group_by", "nodes"), ("group_by", "none")])
    assert p.str("group_by") == "none"


def test_str_default_and_has() -> None:
    p = params("detailed")
    assert p.has("detailed")
    assert not p.has("nodes")
    assert p.str("nodes") is None
    assert p.str("nodes", "x") == "x"
    assert p.str("detailed") == ""


def test_choice() -> None:
    choices = ("nodes", "parents", "none")
    assert params().choice("group_by", "nodes", choices) == "nodes"
    assert params([("group_by", "parents")]).choice("group_by", "nodes", choices) == "parents"
    p = params([("group_by", "Nodes")])
    assert reason_of(lambda: p.choice("group_by", "nodes", choices)) == (
        "[group_by] must be one of [nodes], [parents] or [none] but was [Nodes]"
    )
    two = params([("type", "x")], allowed=("type",))
    assert reason_of(lambda: two.choice("type", "cpu", ("cpu", "wait"))) == (
        "[type] must be one of [cpu] or [wait] but was [x]"
    )


def test_reads_are_recorded_as_consumed() -> None:
    p = params("detailed&nodes=a")
    assert p.consumed == frozenset()
    p.bool("detailed", False)
    p.list("nodes")
    p.str("timeout")
    assert p.consumed == {"detailed", "nodes", "timeout"}


# --------------------------------------------------------------------------------------------
# unknown parameters (BaseRestHandler.unrecognized)


def test_common_parameters_are_always_accepted() -> None:
    assert {"pretty", "human", "error_trace", "filter_path", "format"} <= COMMON_PARAMS
    p = params([("format", "json"), ("filter_path", "a"), ("pretty", ""), ("human", ""),
                ("error_trace", "true")], allowed=())
    assert p.str("format") == "json"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("bogus", "request [/_tasks] contains unrecognized parameter: [bogus]"),
        ("detailled",
         "request [/_tasks] contains unrecognized parameter: [detailled] -> did you mean [detailed]?"),
        ("zzz&actoins=x", "request [/_tasks] contains unrecognized parameters: "
                          "[actoins] -> did you mean [actions]?, [zzz]"),
        ("prety", "request [/_tasks] contains unrecognized parameter: [prety] -> did you mean [pretty]?"),
        ("formatt=json",
         "request [/_tasks] contains unrecognized parameter: [formatt] -> did you mean [format]?"),
        ("node", "request [/_tasks] contains unrecognized parameter: [node] -> did you mean [nodes]?"),
    ],
)
def test_unknown_parameters_are_a_400_with_suggestions(query: str, message: str) -> None:
    assert reason_of(lambda: params(query)) == message


def test_several_close_candidates_best_first_then_by_name() -> None:
    # node~nodes 0.8, node~node_id 0.571: best first; codes/nodes tie at 0.8: by name.
    assert unrecognized_message("/p", ["node"], ["nodes", "node_id", "pretty"]) == (
        "request [/p] contains unrecognized parameter: [node] -> did you mean any of [nodes, node_id]?"
    )
    assert unrecognized_message("/p", ["modes"], ["nodes", "codes"]) == (
        "request [/p] contains unrecognized parameter: [modes] -> did you mean any of [codes, nodes]?"
    )


def test_suggestions_need_a_similarity_above_one_half() -> None:
    assert similarity("ab", "ac") == 0.5
    assert unrecognized_message("/p", ["ab"], ["ac"]) == "request [/p] contains unrecognized parameter: [ab]"
    assert similarity("abc", "abd") == pytest.approx(2 / 3)
    assert unrecognized_message("/p", ["abc"], ["abd"]).endswith("[abc] -> did you mean [abd]?")


def test_unknown_names_are_sorted_and_deduplicated() -> None:
    assert unrecognized_message("/x", ["b", "a", "b"], []) == (
        "request [/x] contains unrecognized parameters: [a], [b]"
    )


@pytest.mark.parametrize(
    ("a", "b", "score"),
    [("", "", 1.0), ("", "a", 0.0), ("abc", "abc", 1.0), ("kitten", "sitting", 1 - 3 / 7), ("a", "b", 0.0)],
)
def test_similarity_is_lucene_levenshtein(a: str, b: str, score: float) -> None:
    assert similarity(a, b) == pytest.approx(score)
    assert similarity(b, a) == pytest.approx(score)


# --------------------------------------------------------------------------------------------
# property: every value either parses or is a 400 illegal_argument_exception

_ALLOWED = ("flag", "timeout", "threads", "items", "kind")


def _read_all(p: RequestParams) -> None:
    p.bool("flag", False)
    p.time_nanos("timeout", None, max_nanos=NANOS["d"])
    p.int("threads", 3, min_value=1, max_value=100)
    p.list("items")
    p.choice("kind", "a", ("a", "b"))
    _ = p.filter_path


@PROPERTY
@given(st.sampled_from((*_ALLOWED, "filter_path")), st.text())
@example("timeout", "1.5s")
@example("timeout", "1M")
@example("threads", "\u0661")  # Arabic-Indic one: Java's parseInt accepts it too
def test_any_value_parses_or_is_an_illegal_argument(name: str, value: str) -> None:
    p = RequestParams("/x", [(name, value)], _ALLOWED)
    try:
        _read_all(p)
    except IllegalArgumentError as err:
        assert err.http_status == 400
        assert err.type in ("illegal_argument_exception", "number_format_exception")
    # anything else (ValueError, OverflowError, a ParseError...) fails the test by propagating


@PROPERTY
@given(st.text())
@example("1.5s")
@example("-3s")
@example("9" * 5000 + "s")
def test_any_string_is_a_time_value_or_an_illegal_argument(raw: str) -> None:
    try:
        nanos = parse_time_value(raw, "t")
    except IllegalArgumentError as err:
        assert err.reason.startswith(("failed to parse [", "failed to parse setting [t] with value ["))
    else:
        assert nanos >= -1


@PROPERTY
@given(st.dictionaries(st.text(min_size=1), st.text(), max_size=4))
def test_unknown_names_never_fail_other_than_as_400(query: dict[str, str]) -> None:
    unknown = sorted(set(query) - COMMON_PARAMS - set(_ALLOWED))
    try:
        RequestParams("/x", list(query.items()), _ALLOWED)
    except IllegalArgumentError as err:
        assert unknown
        assert err.reason.startswith("request [/x] contains unrecognized parameter")
        for name in unknown:
            assert f"[{name}]" in err.reason
    else:
        assert not unknown


# --------------------------------------------------------------------------------------------
# task ids

_node_ids = st.text(st.characters(blacklist_characters=":"), max_size=30)
_seqs = st.integers(min_value=LONG_MIN, max_value=LONG_MAX).filter(lambda n: n != -1)


@PROPERTY
@given(_node_ids, _seqs)
@example("nK3q9wPzR1y8cJm0xVfA2g", 1)
@example("", 0)
def test_task_id_round_trip(node: str, seq: int) -> None:
    task_id = TaskId(node, seq)
    assert str(task_id) == f"{node}:{seq}"
    assert TaskId.parse(str(task_id)) == task_id
    assert TaskId.parse(str(task_id)).is_set


@PROPERTY
@given(st.text().filter(lambda s: ":" not in s and s not in ("", "unset")))
def test_task_id_without_colon_is_malformed(raw: str) -> None:
    with pytest.raises(IllegalArgumentError) as info:
        TaskId.parse(raw)
    assert info.value.type == "illegal_argument_exception"
    assert info.value.reason == f"malformed task id {raw}"


def _is_java_long(text: str) -> bool:
    import re

    if re.fullmatch(r"[+-]?\d+", text) is None:
        return False
    try:
        return LONG_MIN <= int(text) <= LONG_MAX
    except ValueError:
        return False


@PROPERTY
@given(_node_ids, st.text())
@example("n", "1.0")
@example("n", "2:3")
@example("n", "9223372036854775808")
@example("n", " 1")
def test_task_id_number_part_must_be_a_java_long(node: str, number: str) -> None:
    raw = f"{node}:{number}"
    if _is_java_long(number):
        parsed = TaskId.parse(raw)
        assert parsed == (EMPTY_TASK_ID if int(number) == -1 else TaskId(node, int(number)))
        return
    with pytest.raises(IllegalArgumentError) as info:
        TaskId.parse(raw)
    assert info.value.reason == f"malformed task id {raw}"
    assert isinstance(info.value.caused_by, NumberFormatError)
    assert info.value.caused_by.reason == f'For input string: "{number}"'


@PROPERTY
@given(st.text())
def test_task_id_parse_fails_only_with_illegal_argument(raw: str) -> None:
    try:
        TaskId.parse(raw)
    except TaskwardenError as err:
        assert isinstance(err, IllegalArgumentError)
