"""Fixtures shared by the tests that run real peers: each test gets its own network namespace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers import Net


@pytest.fixture
def net() -> Iterator[Net]:
    with Net() as n:
        yield n
