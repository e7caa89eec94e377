"""``taskwarden keys ...``, ``taskwarden users ...`` and the credential options of every group, run as
real subprocesses against the session's node started with ``--security``."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import uuid
from typing import Any

from nodeproc import ADMIN_PASSWORD, NodeProcess
from terminal import read_until

ADMIN = f"admin:{ADMIN_PASSWORD}"


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m taskwarden ARGS`` with none of the caller's ``TASKWARDEN_*`` settings, a wide
    terminal, and no terminal to prompt on (a prompt would read an empty stdin and give up)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TASKWARDEN_")}
    full_env.update({"COLUMNS": "250", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "taskwarden", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=full_env, start_new_session=True)


def finished(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return finished(start_cli(*args, env=env))


def run_cli_together(*commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands at the same time (each costs most of a second of start-up)."""
    return [finished(proc) for proc in [start_cli(*args) for args in commands]]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``error: ...`` line a refused command prints (and no traceback)."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def create_key(node: NodeProcess, name: str, role: str, **extra: str) -> dict[str, Any]:
    response = node.post("/_security/api_key", json={"name": name, "role": role, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stop(node: NodeProcess, task_id: str) -> None:
    node.post(f"/_tasks/{task_id}/_cancel")


def test_a_monitor_key_made_with_the_cli_lists_but_may_not_cancel(secure_node: NodeProcess) -> None:
    task_id = secure_node.start_sleep(duration="10m")
    try:
        created = run_cli("keys", "--url", secure_node.url, "--user", "admin", "create",
                          unique("reader"), "--role", "monitor",
                          env={"TASKWARDEN_PASSWORD": ADMIN_PASSWORD})
        assert created.returncode == 0, created.stderr
        fields = dict(re.findall(r"^(id|name|role|expires|encoded) +(\S+)", created.stdout, re.M))
        assert (fields["role"], fields["expires"]) == ("monitor", "never")
        assert "shown only this once" in created.stdout

        listed, refused = run_cli_together(
            ("tasks", "list", "--url", secure_node.url, "--api-key", fields["encoded"],
             "--group-by", "none"),
            ("tasks", "cancel", task_id, "--url", secure_node.url, "--api-key", fields["encoded"]),
        )
        assert listed.returncode == 0, listed.stderr
        assert task_id in listed.stdout
        assert one_error_line(refused) == (
            f"error: security_exception: action [cluster:admin/tasks/cancel] is unauthorized for "
            f"API key id [{fields['id']}] of user [admin] with effective roles [monitor], this "
            "action is granted by the cluster privileges [manage,admin]"
        )
    finally:
        stop(secure_node, task_id)


def test_a_manage_key_from_the_environment_cancels(secure_node: NodeProcess) -> None:
    task_id = secure_node.start_sleep(duration="10m")
    try:
        created = run_cli("keys", "--url", secure_node.url, "create", unique("operator"),
                          "--role", "manage", "--expiration", "1h", "--json",
                          env={"TASKWARDEN_USER": ADMIN})
        assert created.returncode == 0, created.stderr
        key = json.loads(created.stdout)
        assert set(key) == {"id", "name", "expiration", "api_key", "encoded"}

        cancelled = run_cli("tasks", "cancel", task_id, "--url", secure_node.url,
                            env={"TASKWARDEN_API_KEY": key["encoded"]})
        assert cancelled.returncode == 0, cancelled.stderr
        assert "cancelled 1 task" in cancelled.stdout and task_id in cancelled.stdout
    finally:
        stop(secure_node, task_id)


def test_revoke_shows_what_it_did_and_revoked_keys_get_401(secure_node: NodeProcess) -> None:
    name = unique("revoked")
    live, dead = create_key(secure_node, name, "monitor"), create_key(secure_node, name, "monitor")
    # Expired long before the command below has even started.
    expired = create_key(secure_node, name, "manage", expiration="1ms")
    secure_node.client.request("DELETE", "/_security/api_key", json={"ids": [dead["id"]]})
    admin = ["keys", "--url", secure_node.url, "--user", ADMIN]

    listed = run_cli(*admin, "list", "--name", name)
    assert listed.returncode == 0, listed.stderr
    rows = {key["id"]: line for key in (live, dead, expired)
            for line in listed.stdout.splitlines() if key["id"] in line}
    assert set(rows) == {live["id"], expired["id"]}  # invalidated keys only with --all
    assert re.search(rf"{name} +│ monitor +│ admin +│ .+│ never +│ valid ", rows[live["id"]])
    assert re.search(r"│ manage +│ admin +│ .+│ \d{4}-.+│ expired ", rows[expired["id"]])

    revoked = run_cli(*admin, "revoke", live["id"], dead["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.splitlines() == [
        f"revoked 1 key: {live['id']}", f"already revoked: {dead['id']}",
    ]

    refused = run_cli("tasks", "list", "--url", secure_node.url, "--api-key", live["encoded"])
    assert one_error_line(refused) == (
        "error: security_exception: unable to authenticate with provided credentials and "
        "anonymous access is not allowed for this request "
        f"(API key: api key [{live['id']}] has been invalidated)"
    )

    everything, nothing, unsaid = run_cli_together(
        (*admin, "list", "--name", name, "--all"),
        (*admin, "revoke", "--name", unique("no-such-key")),
        (*admin, "revoke"),
    )
    assert everything.returncode == 0, everything.stderr
    states = {key["id"]: line.split("│")[-2].strip() for key in (live, dead, expired)
              for line in everything.stdout.splitlines() if key["id"] in line}
    assert states == {live["id"]: "invalidated", dead["id"]: "invalidated",
                      expired["id"]: "expired"}
    assert one_error_line(nothing) == "error: no API key matched"
    assert one_error_line(unsaid) == "error: say which keys to revoke: give key ids, --name or --user"


def test_missing_typed_and_doubled_credentials(secure_node: NodeProcess) -> None:
    missing, doubled = run_cli_together(
        ("tasks", "list", "--url", secure_node.url),
        ("tasks", "list", "--url", secure_node.url, "--user", ADMIN, "--api-key", "a2V5"),
    )
    assert one_error_line(missing) == (
        "error: security_exception: missing authentication credentials for REST request "
        "[/_tasks?group_by=nodes] (give --api-key or --user)"
    )
    assert doubled.returncode == 2
    assert "give --api-key or --user, not both" in doubled.stderr

    by_password = run_cli("cat", "tasks", "--url", secure_node.url, "--user", ADMIN,
                          env={"TASKWARDEN_API_KEY": "from-the-environment"})
    assert by_password.returncode == 0, by_password.stderr  # typed credentials win over $ENV
    assert "cluster:monitor/tasks/lists" in by_password.stdout


def test_users_set_list_delete(secure_node: NodeProcess) -> None:
    username, password = unique("ops"), "first-password"
    admin = ["users", "--url", secure_node.url, "--user", ADMIN]

    created = run_cli(*admin, "set", username, "--role", "admin",
                      env={"TASKWARDEN_NEW_PASSWORD": password})
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == f"created user [{username}] with role [admin]"

    listed = run_cli("users", "--url", secure_node.url, "--user", f"{username}:{password}", "list")
    assert listed.returncode == 0, listed.stderr  # the new user signs in with its password
    roles = dict(re.findall(r"│ (\S+) +│ (\S+) +│", listed.stdout))
    assert (roles["admin"], roles[username]) == ("admin", "admin")

    deleted = run_cli(*admin, "delete", username)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == f"deleted user [{username}]; its API keys are invalidated"


def test_passwords_are_prompted_without_echo(secure_node: NodeProcess) -> None:
    username, password = unique("prompted"), "typed-password"
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKWARDEN_")}
    env["COLUMNS"] = "200"
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskwarden", "users", "--url", secure_node.url, "--user", "admin",
         "set", username, "--role", "monitor"],
        stdin=terminal, stdout=terminal, stderr=terminal, env=env, start_new_session=True,
    )
    os.close(terminal)
    try:
        shown = b""
        for prompt, answer in ((b"Password for [admin]: ", ADMIN_PASSWORD),
                               (f"New password for [{username}]: ".encode(), password),
                               (b"Repeat for confirmation: ", password)):
            shown += read_until(controller, prompt)
            assert prompt in shown, shown.decode(errors="replace")
            os.write(controller, answer.encode() + b"\n")
        shown += read_until(controller, b"with role [monitor]")
        assert proc.wait(20) == 0, shown.decode(errors="replace")
        assert f"created user [{username}] with role [monitor]".encode() in shown
        assert ADMIN_PASSWORD.encode() not in shown and password.encode() not in shown
        response = secure_node.client.get("/_security/_authenticate", auth=(username, password))
        assert response.status_code == 200 and response.json()["roles"] == ["monitor"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(controller)
        secure_node.client.delete(f"/_security/user/{username}")
