"""Fixtures shared by the tests that run real peers: each test gets its own network namespace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers import Net


@pytest.fixture
def net() -> Iterator[Net]:
    with Net() as n:
        yield n


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What made each rerun test fail the first time (a rerun that passes hides it)."""
    reruns = terminalreporter.stats.get("rerun", [])
    if reruns:
        terminalreporter.section("first failures of rerun tests")
        for report in reruns:
            terminalreporter.write_line(f"{report.nodeid}:")
            terminalreporter.write_line(str(report.longreprtext)[-4000:])
