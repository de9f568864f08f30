"""services/tts's queue and hang-up handling with a fake model, over real HTTP: replies' first
pieces go first, and a caller who hangs up stops the work at the service, not only the playback."""

import asyncio
from contextlib import aclosing

import numpy as np

from services.tts.client import TtsClient
from services.tts.scheduler import PieceCounts, SynthesisQueue

from .tts_fakes import FakeKokoro, fake_service


async def until(condition, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def health_when(client: TtsClient, condition, timeout_s: float = 5.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition(health := await client.health()):
        assert asyncio.get_running_loop().time() < deadline, health
        await asyncio.sleep(0.01)
    return health


def accounted(health: dict) -> int:
    return sum(health["pieces"].values())


async def synthesize(queue: SynthesisQueue, text: str, *, first: bool) -> int:
    """A piece through the queue, its parts counted; cancelling it leaves the queue at once."""
    async with aclosing(queue.stream(text, "af_heart", 1.0, first=first)) as parts:
        return sum([len(part) async for part in parts])


async def drain(client: TtsClient, text: str) -> int:
    return sum([len(pcm) async for _, pcm in client.stream(text)])


async def test_queue_serves_first_pieces_before_later_ones_fifo_within_each():
    model = FakeKokoro(held=True)
    queue = SynthesisQueue(model)

    def ask(text: str, first: bool) -> asyncio.Task:
        return asyncio.create_task(synthesize(queue, text, first=first))

    running = ask("A2", first=False)  # a long reply's second piece, being synthesised
    await until(lambda: model.started)
    queued = [
        ask("A3", first=False),
        ask("C2", first=False),
        ask("B1", first=True),
        ask("C3", first=False),
        ask("D1", first=True),
    ]
    await until(lambda: queue.waiting == 5)
    model.release(6)
    await asyncio.gather(running, *queued)
    assert model.made == ["A2#1", "B1#1", "D1#1", "A3#1", "C2#1", "C3#1"]
    await queue.aclose()


async def test_a_new_reply_overtakes_the_later_pieces_of_long_ones():
    model = FakeKokoro(held=True)
    async with fake_service(model) as url:
        client = TtsClient(url)
        long_a = asyncio.create_task(drain(client, "A one. A two. A three."))
        await until(lambda: model.started == ["A one."])
        long_c = asyncio.create_task(drain(client, "C one. C two. C three."))
        await health_when(client, lambda h: h["waiting"] == 1)
        model.release()  # A one made: C one starts, A one ends (and A two is asked) behind it
        await until(lambda: model.started == ["A one.", "C one."])
        short = asyncio.create_task(drain(client, "B, a short answer."))
        await health_when(client, lambda h: h["waiting"] == 1)  # B's first piece
        model.release(100)
        await asyncio.gather(long_a, long_c, short)
        await client.aclose()
    assert model.started[:4] == ["A one.", "C one.", "B, a short answer.", "A two."]


async def test_a_new_replys_first_window_overtakes_the_rest_of_another_first_piece():
    """Both callers hear a first sound before either reply's second window is made: the second
    window has the first window's playing time to be ready in, the other caller has nothing."""
    model = FakeKokoro(held=True, first_windows=2)
    queue = SynthesisQueue(model)
    a = asyncio.create_task(synthesize(queue, "A1", first=True))
    await until(lambda: model.started == ["A1"])
    later = asyncio.create_task(synthesize(queue, "C2", first=False))
    b = asyncio.create_task(synthesize(queue, "B1", first=True))
    await until(lambda: queue.waiting == 2)
    model.release(5)
    await asyncio.gather(a, b, later)
    assert model.made == ["A1#1", "B1#1", "A1#2", "B1#2", "C2#1"]
    assert queue.counts.synthesized == 3 and queue.running == 0
    await queue.aclose()


async def test_a_caller_who_leaves_between_two_windows_gets_no_more():
    model = FakeKokoro(held=True, first_windows=2)
    queue = SynthesisQueue(model)
    got: list[np.ndarray] = []

    async def first_part_then_wait() -> None:
        async with aclosing(queue.stream("A1", "af_heart", 1.0, first=True)) as parts:
            async for part in parts:
                got.append(part)
                await asyncio.sleep(3600)  # the caller hangs up before the second window

    a = asyncio.create_task(first_part_then_wait())
    await until(lambda: model.started == ["A1"])
    b = asyncio.create_task(synthesize(queue, "B1", first=True))
    await until(lambda: queue.waiting == 1)
    model.release()  # A1's first window; B1 overtakes its second
    await until(lambda: len(got) == 1 and model.started == ["A1", "B1"])
    a.cancel()
    model.release(2)  # B1's two windows; A1's second is never made
    await b
    await until(lambda: queue.running == 0)
    assert model.made == ["A1#1", "B1#1", "B1#2"]
    assert queue.counts == PieceCounts(synthesized=1, stopped=1, dropped=0)
    await queue.aclose()


async def test_hanging_up_stops_the_piece_in_hand_and_drops_the_rest():
    model = FakeKokoro(held=True)
    text = "One piece here. Two pieces here. Three pieces here. Four pieces here. Five pieces here."
    async with fake_service(model) as url:
        client = TtsClient(url)
        model.release()  # only the first piece may finish
        async with aclosing(client.stream(text)) as audio:
            async for _ in audio:
                # barge-in once the second piece is in hand: before the queue has taken it, the
                # hang-up drops it unstarted (a race the fresh-clone suite lost once)
                await until(lambda: len(model.started) == 2)
                break
        health = await health_when(client, lambda h: accounted(h) == 5)
        await client.aclose()
    assert health["pieces"] == {"synthesized": 1, "stopped": 1, "dropped": 3}, health
    assert model.started == ["One piece here.", "Two pieces here."]
    assert model.finished == ["One piece here."]


async def test_a_request_whose_caller_left_while_queued_never_runs():
    model = FakeKokoro(held=True)
    async with fake_service(model) as url:
        client = TtsClient(url)
        busy = asyncio.create_task(drain(client, "Somebody else talking."))
        await until(lambda: model.started)
        gone = asyncio.create_task(drain(client, "Never said. Not this either."))
        await health_when(client, lambda h: h["waiting"] == 1)
        gone.cancel()  # the caller barged in before its reply got a turn
        await health_when(client, lambda h: h["pieces"]["dropped"] == 2)
        model.release(10)
        await busy
        health = await client.health()
        await client.aclose()
    assert model.started == ["Somebody else talking."]
    assert health["pieces"] == {"synthesized": 1, "stopped": 0, "dropped": 2}, health


async def test_the_agents_later_chunks_wait_behind_another_replys_first():
    """The agent sends each chunk of a reply as its own request (LiveKit's StreamAdapter): the
    plugin marks all but a reply's first as continuing, so another call's first chunk overtakes."""
    from agent.plugins import HalfsecTTS, ReplyStreamAdapter
    from agent.plugins.chunking import FirstClauseTokenizer

    model = FakeKokoro(held=True)
    async with fake_service(model) as url:
        client = TtsClient(url)

        async def reply(text: str) -> None:
            plugin = HalfsecTTS(TtsClient(url))
            async with ReplyStreamAdapter(tts=plugin, sentence_tokenizer=FirstClauseTokenizer()).stream() as stream:
                stream.push_text(text)
                stream.end_input()
                async for _ in stream:
                    pass
            await plugin.aclose()

        a = asyncio.create_task(reply("Well, that depends on the weather, I think so."))
        await until(lambda: model.started == ["Well,"])
        c = asyncio.create_task(reply("Right, the pharmacy opens at nine, every weekday."))
        await health_when(client, lambda h: h["waiting"] == 1)  # C's first chunk
        model.release()  # A's first made: C's first starts; A's second (continuing) is asked after it
        await until(lambda: len(model.started) == 2)
        b = asyncio.create_task(reply("Sure thing, your table is booked."))
        await health_when(client, lambda h: h["waiting"] == 1)  # B's first
        model.release(100)
        await asyncio.gather(a, b, c)
        await client.aclose()
    assert model.started[:4] == ["Well,", "Right,", "Sure thing,", "that depends on the weather,"], model.started


async def _audio(client: TtsClient, text: str, **options) -> bytes:
    return b"".join([pcm async for _, pcm in client.stream(text, **options)])


async def test_a_kept_phrase_is_made_once_and_then_comes_from_memory():
    model = FakeKokoro()
    async with fake_service(model) as url:
        client = TtsClient(url)
        phrase = "Sorry, I didn't catch that. Could you say it again?"
        first = await _audio(client, phrase, keep=True)
        again = await _audio(client, phrase, keep=True)  # the next call's prerendered fallback
        other_voice = await _audio(client, phrase, keep=True, voice="bf_emma")
        unkept = await _audio(client, "Your table is booked.")
        unkept_again = await _audio(client, "Your table is booked.")
        await client.aclose()
    assert first and again == first  # the same audio, byte for byte
    # made for the first ask and for the other voice (another phrase), not for the second ask
    assert model.started.count("Sorry, I didn't catch that.") == 2
    assert other_voice and unkept == unkept_again
    assert model.started.count("Your table is booked.") == 2  # without keep, made each time


async def test_phrases_kept_at_start_are_made_before_the_service_answers():
    model = FakeKokoro()
    phrase = "Sorry, I can't talk right now, please hold on."
    async with fake_service(model, keep_at_start=[phrase]) as url:
        made_at_start = list(model.started)
        client = TtsClient(url)
        kept = await _audio(client, phrase, keep=True)  # a call's prerendered fallback
        unkept = await _audio(client, phrase)  # the same words in a reply are made afresh
        await client.aclose()
    assert made_at_start == ["Sorry, I can't talk right now, please hold on."]
    assert kept == unkept  # the kept audio is what a request makes
    assert model.started == made_at_start * 2  # made at the start and for the unkept ask only


async def test_a_reply_opening_with_an_opener_has_it_from_memory_and_nothing_else_does():
    model = FakeKokoro()
    async with fake_service(model, openers=["Sure,", "Thanks. Have a nice day."]) as url:
        made_at_start = list(model.started)
        client = TtsClient(url)
        reply = await _audio(client, "Thanks. Your table is booked.")
        alone = await _audio(client, "Thanks.")
        later_chunk = await _audio(client, "Thanks.", continues=True)  # not a reply's opening
        other_voice = await _audio(client, "Thanks.", voice="bf_emma")
        unlisted = [await _audio(client, "Got it.") for _ in range(2)]
        health = await client.health()
        await client.aclose()
    assert made_at_start == ["Sure,", "Thanks."]  # each opener's first sentence, as a reply's first piece
    assert reply and alone and reply.startswith(alone) and later_chunk and other_voice
    assert unlisted[0] and unlisted[0] == unlisted[1]
    # after the start, "Thanks." is made for the later chunk and the other voice only
    assert model.started[2:] == ["Your table is booked.", "Thanks.", "Thanks.", "Got it.", "Got it."]
    assert health["openers"] == {"kept": 2, "remembered": 2}, health
