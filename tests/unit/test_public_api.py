"""The package's public surface: ``__all__`` complete, sorted, and every name importable."""

from __future__ import annotations

import subprocess
import sys

import taskwarden


def test_all_is_sorted_and_resolves() -> None:
    names = [n for n in taskwarden.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in taskwarden.__all__:
        assert getattr(taskwarden, name) is not None


def test_task_core_imports_no_web_database_or_network_code() -> None:
    code = (
        "import sys, taskwarden.tasks\n"
        "bad = [m for m in ('starlette', 'uvicorn', 'httpx', 'sqlalchemy', 'aiosqlite',"
        " 'taskwarden.http', 'taskwarden.store', 'taskwarden.cluster') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
