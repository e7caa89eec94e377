"""The shipped OpenAPI description matches the routes, and schemathesis finds no 500 on a live node.

Schemathesis generates requests from the description (parameters of every documented type and
shape, bodies, path values) and checks each answer; the hot threads operations are fuzzed in
test_fuzz.py instead, where their sampling interval is kept short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from nodeproc import NodeProcess
from schemathesis.checks import not_a_server_error

import taskwarden.http
from taskwarden.cluster.transport import INTERNAL_PREFIX
from taskwarden.http.app import API_ROUTES
from taskwarden.http.params import COMMON_PARAMS

OPENAPI = Path(taskwarden.http.__file__).parent / "openapi.yaml"
DESCRIPTION: dict[str, Any] = yaml.safe_load(OPENAPI.read_text())
PUBLIC = [route for route in API_ROUTES if not route.path.startswith(INTERNAL_PREFIX)]


def documented_params(path: str, method: str) -> set[str]:
    operation = DESCRIPTION["paths"][path][method.lower()]
    return {p["name"] for p in operation["parameters"] if p["in"] == "query"}


def test_every_public_route_is_described_and_nothing_else() -> None:
    described = {(path, method.upper()) for path, ops in DESCRIPTION["paths"].items()
                 for method in ops}
    served = {(route.path, method) for route in PUBLIC for method in route.methods}
    assert described == served


@pytest.mark.parametrize("route", PUBLIC, ids=lambda r: r.path)
def test_described_query_parameters_are_the_ones_taken(route: Any) -> None:
    for method in route.methods:
        documented = documented_params(route.path, method)
        taken = set(route.params)
        assert taken <= documented, f"{route.path}: undocumented {sorted(taken - documented)}"
        assert documented <= taken | COMMON_PARAMS, (
            f"{route.path}: documented but refused {sorted(documented - taken - COMMON_PARAMS)}"
        )


@pytest.fixture(scope="module")
def schema_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    # No test actions: a generated body can then never start an hour-long sleep.
    with NodeProcess(tmp_path_factory.mktemp("schemathesis") / "node", node_name="schema",
                     extra_args=["--no-test-actions"]) as node:
        yield node


schema = schemathesis.openapi.from_path(OPENAPI).exclude(
    operation_id=["hotThreads", "hotThreadsSelected"]
)


@schema.parametrize()
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case: Any, schema_node: NodeProcess) -> None:
    response = case.call(base_url=schema_node.url, timeout=30)
    case.validate_response(response, checks=[not_a_server_error])
    assert "Traceback" not in response.text or case.query.get("error_trace") in ("", "true")
