"""One `serve --demo` with default flags, shared by the client tests that need nothing else of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.demo_server import DemoServer, demo_server


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("clients")) as server:
        yield server
