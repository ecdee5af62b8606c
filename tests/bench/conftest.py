from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.supervisor.harness import Session


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """Real commands run in tmp_path; every process they start is ended by pid."""
    s = Session(tmp_path)
    yield s
    s.close()
