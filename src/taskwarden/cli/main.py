"""The ``taskwarden`` command line: ``serve`` starts a node; ``tasks``, ``cat``, ``keys`` and
``users`` talk to one."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from taskwarden.cli.keys import keys_app, users_app
from taskwarden.cli.tasks import cat_app, tasks_app
from taskwarden.errors import TaskwardenError
from taskwarden.timevalue import parse_time_value

__all__ = ["app", "main"]

app = typer.Typer(
    name="taskwarden",
    help="Run, list and cancel long-running Python tasks (Elasticsearch Task Management API).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(tasks_app, name="tasks")
app.add_typer(cat_app, name="cat")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")


def _attributes(pairs: list[str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got [{pair}]", param_hint="--attr")
        attributes[key] = value
    return attributes


def _time_option(raw: str, flag: str) -> int:
    try:
        return parse_time_value(raw, flag.lstrip("-"))
    except TaskwardenError as exc:
        raise typer.BadParameter(exc.reason, param_hint=flag) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port (0 picks a free one).", min=0, max=65535)] = 9200,
    data_dir: Annotated[Path, typer.Option(help="Folder for the node id and the SQLite store.")] = Path(
        "data"
    ),
    node_name: Annotated[str | None, typer.Option(help="Node name (default: host name).")] = None,
    cluster_name: Annotated[str, typer.Option(help="Cluster name.")] = "taskwarden",
    store: Annotated[
        str | None,
        typer.Option(help="sqlite:///PATH or postgresql://... (default: SQLite in the data folder)."),
    ] = None,
    app_modules: Annotated[
        list[str] | None,
        typer.Option("--app", help="Python module whose @action functions to load (repeatable)."),
    ] = None,
    attr: Annotated[
        list[str] | None, typer.Option(help="Node attribute KEY=VALUE (repeatable).")
    ] = None,
    test_actions: Annotated[
        bool, typer.Option("--test-actions/--no-test-actions", help="Offer test:sleep.")
    ] = True,
    grace: Annotated[
        str, typer.Option(help="Process tasks: time from the stop request to SIGTERM.")
    ] = "10s",
    heartbeat_timeout: Annotated[
        str, typer.Option(help="Cluster: a node without a heartbeat for this long has left.")
    ] = "5s",
    results_retention: Annotated[
        str, typer.Option(help="Stored task outcomes older than this are deleted (-1: never).")
    ] = "7d",
    results_cleanup_interval: Annotated[
        str, typer.Option(help="How often expired task outcomes are looked for.")
    ] = "1h",
    max_tasks: Annotated[
        int, typer.Option(help="Actions running at once on this node; more are refused (429).", min=1)
    ] = 200_000,
    max_children_per_task: Annotated[
        int, typer.Option(help="Children of one task running at once on this node (429 beyond).",
                          min=1)
    ] = 100_000,
    max_concurrent_requests: Annotated[
        int, typer.Option(help="HTTP requests served at once (429 beyond; node-to-node ones aside).",
                          min=1)
    ] = 5_000,
    security: Annotated[
        bool, typer.Option("--security/--no-security",
                           help="Require a user's password or an API key on every request.")
    ] = False,
    admin_password: Annotated[
        str | None, typer.Option(envvar="TASKWARDEN_ADMIN_PASSWORD", show_default=False,
                                 help="With --security on a new cluster: the [admin] user's "
                                      "password (default: generated and printed once).")
    ] = None,
    cert: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False,
                                  help="Serve HTTPS with this certificate (PEM; needs --key).")
    ] = None,
    key: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="The certificate's key (PEM).")
    ] = None,
    ca_cert: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False,
                                  help="CA that signed the other nodes' certificates (default: "
                                       "the system's).")
    ] = None,
) -> None:
    """Start a node (one process; SQLite in the data folder unless --store says otherwise)."""
    from taskwarden.node import NodeSettings
    from taskwarden.server import run_node

    grace_nanos = _time_option(grace, "--grace")
    heartbeat_nanos = _time_option(heartbeat_timeout, "--heartbeat-timeout")
    if heartbeat_nanos < 2 * 10**9:  # heartbeats go out every second
        raise typer.BadParameter("must be at least [2s]", param_hint="--heartbeat-timeout")
    retention_nanos = _time_option(results_retention, "--results-retention")
    cleanup_nanos = _time_option(results_cleanup_interval, "--results-cleanup-interval")
    if cleanup_nanos < 10**9:
        raise typer.BadParameter("must be at least [1s]", param_hint="--results-cleanup-interval")
    if (cert is None) != (key is None):
        raise typer.BadParameter("--cert and --key go together", param_hint="--cert")
    if ca_cert is not None and cert is None:
        raise typer.BadParameter(
            "checks the other nodes' HTTPS certificates: give this node's --cert and --key too",
            param_hint="--ca-cert",
        )
    settings = NodeSettings(
        host=host,
        port=port,
        data_dir=data_dir,
        node_name=node_name,
        cluster_name=cluster_name,
        store=store,
        apps=list(app_modules or []),
        attributes=_attributes(list(attr or [])),
        test_actions=test_actions,
        grace_seconds=max(0, grace_nanos) / 1e9,
        heartbeat_timeout_seconds=heartbeat_nanos / 1e9,
        results_retention_seconds=retention_nanos / 1e9 if retention_nanos >= 0 else -1.0,
        results_cleanup_interval_seconds=cleanup_nanos / 1e9,
        max_tasks=max_tasks,
        max_children_per_task=max_children_per_task,
        max_concurrent_requests=max_concurrent_requests,
        security=security,
        admin_password=admin_password,
        tls_cert=cert,
        tls_key=key,
        tls_ca=ca_cert,
    )
    run_node(settings)


@app.callback()
def _root() -> None:
    """taskwarden: tasks you can see and cancel, over the Elasticsearch Task Management API."""


# A task id is a 22-character url-safe base64 node id, a colon and a number; a node id may start
# with "-", and the command line would then read the id as an option.
_DASHED_TASK_ID = re.compile(r"-[A-Za-z0-9_-]{21}:\d+")


def task_ids_as_arguments(argv: list[str]) -> list[str]:
    """Move task ids that start with ``-`` after ``--``, where they read as arguments."""
    if "--" in argv:
        return argv
    dashed = {
        i for i, arg in enumerate(argv)
        if _DASHED_TASK_ID.fullmatch(arg) and (i == 0 or argv[i - 1] != "--parent-task-id")
    }
    if not dashed:
        return argv
    kept = [arg for i, arg in enumerate(argv) if i not in dashed]
    return [*kept, "--", *(argv[i] for i in sorted(dashed))]


def main() -> None:
    app(args=task_ids_as_arguments(sys.argv[1:]), prog_name="taskwarden")
