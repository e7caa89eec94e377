"""Start and stop a real ``taskwarden serve`` process for tests."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

_STARTED = re.compile(r"started on (https?://\S+)")

SUPPORT = Path(__file__).resolve().parent


def support_pythonpath() -> str:
    """PYTHONPATH for a node that loads a test app from this folder (``--app tw_user_app``)."""
    return os.pathsep.join(p for p in (str(SUPPORT), os.environ.get("PYTHONPATH", "")) if p)


ADMIN_PASSWORD = "admin-password"
"""The bootstrap admin's password of nodes started with ``secure=True``."""


class NodeProcess:
    """A node in its own process, on a free port, with its own data folder."""

    def __init__(
        self,
        data_dir: Path,
        *,
        node_name: str = "node",
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        secure: bool = False,
        auth: httpx.Auth | tuple[str, str] | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """``secure``: started with ``--security`` and the admin password above; the helper
        client then signs in as that admin unless ``auth`` says otherwise. ``verify``: how the
        certificate of a node serving HTTPS is checked (an SSL context trusting its CA)."""
        self.data_dir = data_dir
        self.node_name = node_name
        self.extra_args = extra_args or []
        self.env = env or {}
        if secure:
            self.extra_args = ["--security", *self.extra_args]
            self.env.setdefault("TASKWARDEN_ADMIN_PASSWORD", ADMIN_PASSWORD)
            if auth is None:
                auth = ("admin", ADMIN_PASSWORD)
        self.auth = auth
        self.verify = verify
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: list[str] = []
        self._client: httpx.Client | None = None
        self._pump: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable, "-m", "taskwarden", "serve",
            "--port", "0",
            "--data-dir", str(self.data_dir),
            "--node-name", self.node_name,
            *self.extra_args,
        ]
        env = dict(os.environ)
        env.update(self.env)
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                match = _STARTED.search(line)
                if match and not ready.is_set():
                    self.url = match.group(1)
                    ready.set()
            ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not ready.wait(timeout) or not self.url:
            self.kill()
            raise RuntimeError("node did not start:\n" + "".join(self.output))
        self._client = httpx.Client(
            base_url=self.url, timeout=30.0, auth=self.auth, verify=self.verify
        )

    def __enter__(self) -> NodeProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def client(self) -> httpx.Client:
        assert self._client is not None
        return self._client

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, **kwargs)

    @property
    def node_id(self) -> str:
        """The id of this node: created at its first start and kept in its data folder."""
        return (self.data_dir / "node_id").read_text().strip()

    def start_sleep(self, headers: dict[str, str] | None = None, **params: Any) -> str:
        """Start a background ``test:sleep`` (with request ``headers``) and return its task id."""
        response = self.post(
            "/_actions/test:sleep", params={"wait_for_completion": "false"}, json=params,
            headers=headers or {},
        )
        assert response.status_code == 200, response.text
        task_id: str = response.json()["task"]
        return task_id

    def wait_until(self, predicate: Any, timeout: float = 20.0, message: str = "") -> None:
        """Poll ``predicate`` (a callable) until true, with a deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"condition not met within {timeout}s {message}")

    def running(self, action: str = "test:sleep*") -> list[dict[str, Any]]:
        body = self.get("/_tasks", params={"actions": action, "group_by": "none",
                                           "detailed": "true"}).json()
        tasks: list[dict[str, Any]] = body["tasks"]
        return tasks

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: the graceful stop."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: the node hangs, its sockets stay open."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_output()

    def _close_output(self) -> None:
        """Once the process has exited, let the reader drain its pipe, then close it."""
        if self.proc is None or self.proc.poll() is None:
            return
        if self._pump is not None:
            self._pump.join(10)
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()
