"""TaskId parsing follows Elasticsearch's rules."""

from __future__ import annotations

import pytest

from taskwarden.errors import IllegalArgumentError
from taskwarden.tasks import EMPTY_TASK_ID, TaskId


def test_round_trip() -> None:
    task_id = TaskId.parse("abc:12")
    assert task_id == TaskId("abc", 12)
    assert str(task_id) == "abc:12"


@pytest.mark.parametrize("raw", [None, "", "unset", "n:-1"])
def test_unset_forms(raw: str | None) -> None:
    assert TaskId.parse(raw) == EMPTY_TASK_ID
    assert not TaskId.parse(raw).is_set
    assert str(EMPTY_TASK_ID) == "unset"


def test_no_colon_is_malformed_without_cause() -> None:
    with pytest.raises(IllegalArgumentError) as info:
        TaskId.parse("abc")
    assert info.value.reason == "malformed task id abc"
    assert info.value.caused_by is None


@pytest.mark.parametrize("raw", ["a:b", "a:1:2", "a:", "a: 1", "a:99999999999999999999"])
def test_bad_number_has_number_format_cause(raw: str) -> None:
    with pytest.raises(IllegalArgumentError) as info:
        TaskId.parse(raw)
    assert info.value.reason == f"malformed task id {raw}"
    assert info.value.caused_by is not None
    assert info.value.caused_by.type == "number_format_exception"
    number = raw.partition(":")[2]
    assert info.value.caused_by.reason == f'For input string: "{number}"'


def test_first_colon_splits() -> None:
    with pytest.raises(IllegalArgumentError):
        TaskId.parse("a:b:3")
    assert TaskId.parse(":5") == TaskId("", 5)
