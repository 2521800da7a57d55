"""Workers start a new job at once instead of at their next poll.

ARQ's worker looks at the queue every poll delay (0.5 s by default), so a job
waits a quarter of a second on average before it starts. The API publishes a
wake-up after each enqueue (and a worker after each job it ends, as a slot is
free); every worker listens, polls at once, and the queue's own guard lets
exactly one of them take each job. The poll stays as a fallback.
"""

from __future__ import annotations

import contextlib
import logging

from arq.worker import Worker
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from ytmp3.cache import keys

log = logging.getLogger(__name__)


async def _quiet_for(pubsub: PubSub, seconds: float) -> None:
    """Return after `seconds`, or as soon as a wake-up arrives (draining any others)."""
    message = await pubsub.get_message(timeout=seconds)
    while message is not None:
        message = await pubsub.get_message(timeout=0)


class PromptWorker(Worker):
    """ARQ's worker whose wait between two looks at the queue ends on a wake-up."""

    async def main(self) -> None:
        # As ARQ's own main(), less its Redis INFO log line (the embedded store has
        # no INFO) and with the poll's sleep replaced by a wait for a wake-up.
        log.info("worker starting: %s", ", ".join(self.functions))
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        pubsub = self.pool.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(keys.wakeup_channel())
            while True:
                await self._poll_iteration()
                await _quiet_for(pubsub, self.poll_delay_s)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
