"""One real ``bentoml serve`` process over the CLI-trained home, shared by the API tests."""

from __future__ import annotations

import pytest

from tests.integration.server import running_server


@pytest.fixture(scope="session")
def server(trained_home):
    """Base URL of the service serving all three production models."""
    with running_server(trained_home, extra_env={"SHOPGUARD_DEVICE": "cpu"}) as base:
        yield base
