from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.redis_server import RedisServer
from tests.integration.helpers import free_port


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    yield server
    if server.proc is not None:
        server.thaw()
    server.kill()
