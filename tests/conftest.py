"""Hooks for every test directory."""
from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Each phase's report on the item as `rep_setup`/`rep_call`/`rep_teardown`, so a
    fixture's teardown can tell whether its test failed (tests/clusters.py then prints
    the members' logs)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
