"""Each finished turn's record, live, on the room's data channel (topic `halfsec.turn`): a page in
the room (the caller's browser) draws the call's latency waterfall as it happens.

The payload is the record exactly as the call writes it to turns.jsonl (one JSON object, UTF-8),
sent reliable, in turn order. Publishing never holds up or breaks the call: records queue and one
task sends them; a failed send (the room gone, a payload over LiveKit's size limit) is logged and
the next record goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Protocol

from latency import TurnRecord

log = logging.getLogger("halfsec.worker")

TOPIC = "halfsec.turn"
_CLOSE_TIMEOUT_S = 2.0  # at the call's end, what is still queued gets this long to go out


class DataPublisher(Protocol):
    """What the feed uses of LiveKit's `rtc.LocalParticipant`."""

    async def publish_data(self, payload: bytes | str, *, reliable: bool = True, topic: str = "") -> None: ...


class Room(Protocol):
    """What the feed uses of LiveKit's `rtc.Room`: its participant exists once it is connected,
    after the feed is made (records come only then: the caller has spoken)."""

    @property
    def local_participant(self) -> DataPublisher: ...


def payload(record: TurnRecord) -> bytes:
    """The record as a line of turns.jsonl holds it."""
    return json.dumps(record.to_json(), ensure_ascii=False).encode("utf-8")


class TurnFeed:
    def __init__(self, room: Room, topic: str = TOPIC) -> None:
        self._room = room
        self._topic = topic
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._send_all(), name="turn-feed")

    def send(self, record: TurnRecord) -> None:
        """Queue `record` (the tracer's sink is synchronous); it goes out in turn order."""
        self._queue.put_nowait(payload(record))

    async def _send_all(self) -> None:
        while (data := await self._queue.get()) is not None:
            try:
                await self._room.local_participant.publish_data(data, reliable=True, topic=self._topic)
            except Exception as exc:  # noqa: BLE001 (any failure: the call goes on without its feed)
                log.warning("could not publish a turn record on %s (%d bytes): %s", self._topic, len(data), exc)

    async def aclose(self) -> None:
        """Send what is queued (for `_CLOSE_TIMEOUT_S` at most), then stop."""
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), _CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("turn records still unpublished at the call's end: dropped")
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
