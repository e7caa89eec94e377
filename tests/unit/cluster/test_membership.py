"""Membership's view of the cluster from heartbeat rows: fresh, stale, removed, and just-recovered."""

from __future__ import annotations

from taskwarden.cluster.membership import Membership, record_of
from taskwarden.cluster.nodes import NodeInfo

NOW = 1_700_000_000_000


def node(node_id: str) -> NodeInfo:
    return NodeInfo(node_id=node_id, name=node_id, host="127.0.0.1", port=9200, version="0.1.0")


def test_fresh_rows_join_and_stale_rows_are_gone() -> None:
    view = Membership(node("a"), stale_after_s=5)
    assert view.update([record_of(node("b"), NOW - 1000), record_of(node("c"), NOW - 4000)], NOW) == []
    assert sorted(n.node_id for n in view.live_nodes()) == ["a", "b", "c"]
    gone = view.update([record_of(node("b"), NOW), record_of(node("c"), NOW - 6000)], NOW + 1000)
    assert [n.node_id for n in gone] == ["c"]
    assert sorted(n.node_id for n in view.live_nodes()) == ["a", "b"]


def test_stale_rows_prove_nothing_right_after_our_own_store_outage() -> None:
    view = Membership(node("a"), stale_after_s=5)
    view.update([record_of(node("b"), NOW)], NOW)
    stale = [record_of(node("b"), NOW)]
    assert view.update(stale, NOW + 9000, may_declare_gone=False) == []
    assert view.get("b") is not None
    assert [n.node_id for n in view.update(stale, NOW + 9000)] == ["b"]


def test_removed_row_leaves_at_once_and_self_always_stays() -> None:
    view = Membership(node("a"), stale_after_s=5)
    view.update([record_of(node("b"), NOW)], NOW)
    assert [n.node_id for n in view.update([], NOW, may_declare_gone=False)] == ["b"]
    assert [n.node_id for n in view.live_nodes()] == ["a"]
