"""The README's Guarantees point at tests: every test they name exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def guarantees() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Guarantees"):text.index("## Performance")]


def test_every_test_named_in_the_guarantees_exists() -> None:
    named: list[tuple[str, str | None]] = []
    last = None
    for match in re.finditer(r"`([\w/]+\.py)?(?:::(\w+))?`", guarantees()):
        path, name = match.group(1), match.group(2)
        if path is None and name is None:
            continue
        last = path or last
        assert last is not None, match.group(0)
        named.append((last, name))
    assert len(named) > 20
    for path, name in named:
        source = (ROOT / "tests" / path).read_text()
        if name is not None:
            assert re.search(rf"def {name}\(", source), f"{path}::{name} is not a test"
