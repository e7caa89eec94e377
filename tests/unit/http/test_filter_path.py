"""``filter_path`` response filtering, as Elasticsearch documents and implements it.

The tables are Elasticsearch's own (``FilterPathGeneratorFilteringTests`` and the examples of the
"Response filtering" section of the common options page): ``*`` matches within one name, ``**``
spans one or more levels, ``-`` excludes, ``\\.`` escapes a dot, arrays are filtered element by
element, objects and arrays the filtering empties disappear, and nothing matched gives ``{}``.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskwarden.http.filter_path import apply_filter_path

SAMPLE: dict[str, Any] = {
    "a": 0,
    "b": True,
    "c": "c_value",
    "d": [0, 1, 2],
    "e": [{"f1": "f1_value", "f2": "f2_value"}, {"g1": "g1_value", "g2": "g2_value"}],
    "h": {"i": {"j": {"k": {"l": "l_value"}}}},
}
H = {"h": SAMPLE["h"]}
E = {"e": SAMPLE["e"]}


def without(*keys: str) -> dict[str, Any]:
    return {k: v for k, v in SAMPLE.items() if k not in keys}


def filtered(body: Any, expressions: str) -> Any:
    """``filter_path=<expressions>`` as the query parameter carries it."""
    return apply_filter_path(copy.deepcopy(body), expressions.split(","))


INCLUDES: list[tuple[str, Any]] = [
    ("a", {"a": 0}),
    ("b", {"b": True}),
    ("c", {"c": "c_value"}),
    ("d", {"d": [0, 1, 2]}),
    ("e", E),
    ("h", H),
    ("z", {}),
    ("e.f1", {"e": [{"f1": "f1_value"}]}),
    ("e.f2", {"e": [{"f2": "f2_value"}]}),
    ("e.f*", {"e": [{"f1": "f1_value", "f2": "f2_value"}]}),
    ("e.*2", {"e": [{"f2": "f2_value"}, {"g2": "g2_value"}]}),
    ("h.i", H),
    ("h.i.j.k.l", H),
    ("h.*", H),
    ("*.i", H),
    ("*.i.j", H),
    ("h.*.j", H),
    ("h.i.*", H),
    ("h.*.j.*.l", H),
    ("**.l", H),
    ("**.*2", {"e": [{"f2": "f2_value"}, {"g2": "g2_value"}]}),
    ("h.i.j.k.l,h.i.j.k.l.m", H),
    ("a,b,c,d,e.f1,e.f2,e.g1,e.g2,h.i.j.k.l", SAMPLE),
    ("d.x", {}),  # a path that goes on past a scalar keeps nothing
    ("a.b", {}),
]

EXCLUDES: list[tuple[str, Any]] = [
    ("a", without("a")),
    ("d", without("d")),
    ("e", without("e")),
    ("h", without("h")),
    ("z", SAMPLE),
    ("e.f1", {**without(), "e": [{"f2": "f2_value"}, {"g1": "g1_value", "g2": "g2_value"}]}),
    ("e.f*", {**without(), "e": [{"g1": "g1_value", "g2": "g2_value"}]}),
    ("e.*2", {**without(), "e": [{"f1": "f1_value"}, {"g1": "g1_value"}]}),
    ("h.i", without("h")),
    ("h.i.j.k.l", without("h")),  # emptied objects go, all the way up
    ("h.*", without("h")),
    ("*.i", without("h")),
    ("h.*.j.*.l", without("h")),
    ("**.l", without("h")),
    ("**.*2", {**without(), "e": [{"f1": "f1_value"}, {"g1": "g1_value"}]}),
    ("h.i.j.k.l,h.i.j.k.l.m", without("h")),
    ("a,b,c,d,e.f1,e.f2,e.g1,e.g2,h.i.j.k.l", {}),
    ("d.x", SAMPLE),  # scalars below a partly excluded path stay
]


@pytest.mark.parametrize(("expressions", "expected"), INCLUDES)
def test_inclusive_filters(expressions: str, expected: Any) -> None:
    assert filtered(SAMPLE, expressions) == expected


@pytest.mark.parametrize(("expressions", "expected"), EXCLUDES)
def test_exclusive_filters(expressions: str, expected: Any) -> None:
    negated = ",".join("-" + e for e in expressions.split(","))
    assert filtered(SAMPLE, negated) == expected


def test_key_order_is_kept() -> None:
    result = filtered(SAMPLE, "h,a,e.*2")
    assert list(result) == ["a", "e", "h"]


def test_escaped_dots_name_one_field() -> None:
    body = {"a": 0, "b.c": "value", "b": {"c": "c_value"}}
    assert filtered(body, "b.c") == {"b": {"c": "c_value"}}
    assert filtered(body, "b\\.c") == {"b.c": "value"}
    assert filtered(body, "-b.c") == {"a": 0, "b.c": "value"}
    assert filtered(body, "-b\\.c") == {"a": 0, "b": {"c": "c_value"}}


def test_task_header_with_a_dot_can_be_selected() -> None:
    body = {"tasks": [{"id": 1, "headers": {"trace.id": "abc", "X-Opaque-Id": "x"}}]}
    assert filtered(body, "tasks.headers.trace\\.id") == {"tasks": [{"headers": {"trace.id": "abc"}}]}


def test_double_wildcard_spans_one_or_more_levels() -> None:
    body = {"state": "top", "x": {"state": "one"}, "y": {"z": {"state": "two"}}}
    # ES's FilterPath: "**" takes at least one name, so "**.state" skips a top-level "state".
    assert filtered(body, "**.state") == {"x": {"state": "one"}, "y": {"z": {"state": "two"}}}
    assert filtered(body, "-**.state") == {"state": "top"}
    assert filtered(body, "y.**") == {"y": {"z": {"state": "two"}}}
    assert filtered(body, "x.**.state") == {}
    assert filtered(body, "y.**.state") == {"y": {"z": {"state": "two"}}}


# Examples of the "Response filtering" documentation (common options).


def test_doc_search_example() -> None:
    response = {
        "took": 3,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {
            "total": {"value": 1, "relation": "eq"},
            "max_score": 1.6375021,
            "hits": [{"_index": "my-index-000001", "_id": "0", "_score": 1.6375021, "_source": {"x": 1}}],
        },
    }
    assert filtered(response, "took,hits.hits._id,hits.hits._score") == {
        "took": 3,
        "hits": {"hits": [{"_id": "0", "_score": 1.6375021}]},
    }


CLUSTER_STATE = {
    "cluster_name": "c",
    "metadata": {
        "indices": {
            "my-index-000001": {"state": "open", "settings": {"x": 1}, "stats": 2},
            "my-index-000002": {"state": "open", "settings": {"x": 2}},
            "logstash-2024": {"state": "close", "settings": {"x": 3}},
        }
    },
    "routing_table": {
        "indices": {
            "my-index-000001": {
                "shards": {
                    "0": [{"state": "STARTED", "primary": True}, {"state": "UNASSIGNED", "primary": False}]
                }
            }
        }
    },
}


def test_doc_wildcard_in_a_name() -> None:
    assert filtered(CLUSTER_STATE, "metadata.indices.*.stat*") == {
        "metadata": {
            "indices": {
                "my-index-000001": {"state": "open", "stats": 2},
                "my-index-000002": {"state": "open"},
                "logstash-2024": {"state": "close"},
            }
        }
    }


def test_doc_double_wildcard() -> None:
    assert filtered(CLUSTER_STATE, "routing_table.indices.**.state") == {
        "routing_table": {
            "indices": {"my-index-000001": {"shards": {"0": [{"state": "STARTED"}, {"state": "UNASSIGNED"}]}}}
        }
    }


def test_doc_exclusion() -> None:
    assert filtered({"count": 5, "_shards": {"total": 1, "successful": 1}}, "-_shards") == {"count": 5}


def test_doc_inclusion_and_exclusion_combined() -> None:
    assert filtered(CLUSTER_STATE, "metadata.indices.*.state,-metadata.indices.logstash-*") == {
        "metadata": {
            "indices": {"my-index-000001": {"state": "open"}, "my-index-000002": {"state": "open"}}
        }
    }


def test_exclusions_apply_first() -> None:
    # ES: "the exclusive filters will be applied first and the result will be filtered again
    # using the inclusive filters", so an object the exclusion emptied is not brought back.
    assert filtered({"a": {"b": 1}, "c": 2}, "a,-a.b") == {}
    assert filtered({"a": {"b": 1, "x": 3}, "c": 2}, "a,-a.b") == {"a": {"x": 3}}


def test_exclusion_keeps_objects_that_were_empty_already() -> None:
    # Deliberate: ES also drops those (elastic/elasticsearch#63842, filed as a bug).
    body = {"tasks": [{"id": 1, "headers": {}, "status": {"phase": "x"}}]}
    assert filtered(body, "-**.status") == {"tasks": [{"id": 1, "headers": {}}]}


def test_nothing_matched_is_an_empty_object() -> None:
    assert filtered({"nodes": {"n1": {"tasks": {}}}}, "node_failures") == {}
    assert filtered({"a": 1}, "-a") == {}
    assert filtered({"a": 1}, "-**") == {}
    assert filtered({"a": {"b": [{"c": 1}]}}, "-a.b.c") == {}


def test_blank_and_lone_minus_expressions_are_ignored() -> None:
    assert apply_filter_path({"a": 1}, ["", "  ", "-"]) == {"a": 1}
    assert apply_filter_path({"a": 1, "b": 2}, [" a "]) == {"a": 1}


def test_non_object_bodies_pass_through() -> None:
    assert apply_filter_path("text body", ["a"]) == "text body"
    assert apply_filter_path(b"bytes", ["-a"]) == b"bytes"
    assert apply_filter_path([{"a": 1}], ["b"]) == [{"a": 1}]


def test_task_list_shapes() -> None:
    body = {
        "nodes": {
            "n1": {
                "name": "alpha",
                "roles": ["task"],
                "tasks": {
                    "n1:1": {"node": "n1", "id": 1, "action": "test:sleep", "cancellable": True},
                    "n1:2": {"node": "n1", "id": 2, "action": "test:sleep[c]", "cancellable": True},
                },
            }
        }
    }
    assert filtered(body, "nodes.*.tasks.*.action") == {
        "nodes": {"n1": {"tasks": {"n1:1": {"action": "test:sleep"}, "n1:2": {"action": "test:sleep[c]"}}}}
    }
    assert filtered(body, "**.id") == {"nodes": {"n1": {"tasks": {"n1:1": {"id": 1}, "n1:2": {"id": 2}}}}}
    assert filtered(body, "-nodes.*.tasks,-**.roles") == {"nodes": {"n1": {"name": "alpha"}}}
    assert filtered({"tasks": [{"id": 1, "x": 2}, {"x": 3}]}, "tasks.id") == {"tasks": [{"id": 1}]}


# --------------------------------------------------------------------------------------------
# properties

# A small alphabet so that generated expressions often hit generated keys; no "." "*" "\\" (path
# syntax), no leading "-" (exclusion) and no blanks (expressions are trimmed).
_keys = st.text(alphabet="abxy_-0é", min_size=1, max_size=3).filter(lambda k: not k.startswith("-"))
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=12,
)
_bodies = st.dictionaries(_keys, _json, max_size=6)
_segment = st.one_of(_keys, st.sampled_from(["*", "**", "a*", "*b"]))
_expressions = st.lists(
    st.builds(lambda neg, parts: ("-" if neg else "") + ".".join(parts), st.booleans(),
              st.lists(_segment, min_size=1, max_size=4)),
    max_size=4,
)
PROPERTY = settings(database=None, max_examples=100, deadline=None)


@PROPERTY
@given(_bodies)
def test_double_wildcard_or_no_expression_keeps_the_body(body: dict[str, Any]) -> None:
    before = orjson.dumps(body)
    assert apply_filter_path(body, ["**"]) == body
    assert apply_filter_path(body, []) == body
    assert apply_filter_path(body, ["", " "]) == body
    assert orjson.dumps(body) == before  # the input is never modified


def _subset(result: Any, original: Any) -> None:
    """Every key of ``result`` is a key of ``original`` at the same place, with a filtered value."""
    if isinstance(result, dict):
        assert isinstance(original, dict)
        assert list(result) == [k for k in original if k in result]  # a subset, in the same order
        for key, value in result.items():
            _subset(value, original[key])
    elif isinstance(result, list):
        assert isinstance(original, list)
        assert len(result) <= len(original)
        for item in result:
            assert any(_is_filtered_from(item, candidate) for candidate in original)
    else:
        assert result == original


def _is_filtered_from(item: Any, candidate: Any) -> bool:
    try:
        _subset(item, candidate)
    except AssertionError:
        return False
    return True


@PROPERTY
@given(_bodies, _expressions)
def test_result_is_always_a_subset_of_the_input(body: dict[str, Any], expressions: list[str]) -> None:
    before = orjson.dumps(body)
    result = apply_filter_path(body, expressions)
    assert isinstance(result, dict)
    _subset(result, body)
    assert orjson.dumps(body) == before


@PROPERTY
@given(_bodies, st.lists(_keys, min_size=1, max_size=3))
def test_including_a_top_level_key_keeps_exactly_that_key(body: dict[str, Any], keys: list[str]) -> None:
    result = apply_filter_path(body, keys)
    assert result == {k: v for k, v in body.items() if k in keys}
    rest = apply_filter_path(body, ["-" + k for k in keys])
    assert rest == {k: v for k, v in body.items() if k not in keys}
