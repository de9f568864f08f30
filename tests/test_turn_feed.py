"""Each finished turn's record on the room's data channel: what the call writes to turns.jsonl,
reliable, in order, on topic halfsec.turn; a failed publish is logged and the feed goes on."""

import asyncio
import json
from types import SimpleNamespace

from livekit.rtc.participant import PublishDataError

from agent.turn_feed import TOPIC, TurnFeed
from latency import TurnLog, build_record
from latency.turnlog import read_turns


class Participant:
    """LiveKit's LocalParticipant as the feed uses it; `failing`: the sends that raise, as
    LiveKit's does for a room that is gone or a payload over its limit."""

    def __init__(self, failing: set[int] = frozenset(), held: asyncio.Event | None = None) -> None:
        self.sent: list[tuple[dict, bool, str]] = []
        self.failing, self.held, self.calls = failing, held, 0

    async def publish_data(self, payload, *, reliable=True, topic=""):
        self.calls += 1
        if self.held is not None:
            await self.held.wait()
        if self.calls in self.failing:
            raise PublishDataError("engine: data channel closed")
        self.sent.append((json.loads(payload), reliable, topic))


def turn(n: int):
    return build_record("support-7", n, {"last_voiced": 0.0, "first_frame_out": 0.3 + n / 10}, 500.0, user_text="hé")


async def test_each_record_goes_out_as_turns_jsonl_holds_it(tmp_path):
    participant = Participant()
    feed = TurnFeed(SimpleNamespace(local_participant=participant))
    with TurnLog(tmp_path / "turns.jsonl") as log:
        for n in (1, 2, 3):
            record = turn(n)
            log.write(record)
            feed.send(record)
    await feed.aclose()
    assert [s[0] for s in participant.sent] == list(read_turns(tmp_path / "turns.jsonl"))
    assert {(reliable, topic) for _, reliable, topic in participant.sent} == {(True, TOPIC)} == {(True, "halfsec.turn")}
    assert participant.sent[0][0]["user_text"] == "hé" and participant.sent[2][0]["v2v_ms"] == 600.0


async def test_a_failed_publish_is_logged_and_the_next_goes_out(caplog):
    participant = Participant(failing={1})
    feed = TurnFeed(SimpleNamespace(local_participant=participant))
    feed.send(turn(1))
    feed.send(turn(2))
    await feed.aclose()
    assert [s[0]["turn"] for s in participant.sent] == [2]
    assert "could not publish a turn record on halfsec.turn" in caplog.text
    assert "data channel closed" in caplog.text


async def test_sending_never_waits_for_the_room(caplog):
    held = asyncio.Event()
    participant = Participant(held=held)
    feed = TurnFeed(SimpleNamespace(local_participant=participant))
    for n in range(1, 6):
        feed.send(turn(n))  # returns at once: the tracer's sink is synchronous
    await asyncio.sleep(0)
    assert participant.sent == []
    held.set()
    await feed.aclose()
    assert [s[0]["turn"] for s in participant.sent] == [1, 2, 3, 4, 5]


async def test_a_room_that_never_answers_does_not_hold_up_the_calls_end(caplog, monkeypatch):
    monkeypatch.setattr("agent.turn_feed._CLOSE_TIMEOUT_S", 0.1)
    feed = TurnFeed(SimpleNamespace(local_participant=Participant(held=asyncio.Event())))  # never set
    feed.send(turn(1))
    await feed.aclose()
    assert "turn records still unpublished at the call's end: dropped" in caplog.text


class Unconnected:
    @property
    def local_participant(self):
        raise Exception("cannot access local participant before connecting")  # LiveKit's own words


async def test_a_room_not_connected_is_a_failed_publish_not_a_crash(caplog):
    feed = TurnFeed(Unconnected())
    feed.send(turn(1))
    await feed.aclose()
    assert "could not publish a turn record on halfsec.turn" in caplog.text
