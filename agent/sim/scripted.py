"""The LLM of a compared call: LiveKit's own OpenAI plugin on vLLM, counting the requests each
turn makes and, given a script, making each turn's reply the scripted one at real LLM cost.

Why scripted: with its own replies a 135M model says something different on each side of a
comparison (one comma in a transcript changes every later reply), and a reply's length and shape
decide most of the TTS time. Why not vLLM's structured output alone: forced to a fixed text, the
model picks the likeliest *allowed* token, and a lone "S" outweighs "Strong" (every S-word adds to
it), so a 17-word reply came out as 65-74 one- or two-letter tokens instead of 18: the LLM would
decode four times the tokens a real reply costs. So the request asks vLLM for exactly as many
tokens as the reply has in the model's own tokenizer (`ignore_eos`, `min_tokens` = `max_tokens`):
it prefills the real prompt and decodes that many tokens on the same cores, at the pace a real
reply streams, and each token that arrives carries the reply's next token of text.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, ClassVar

import aiohttp
from livekit.agents import APIConnectOptions, llm
from livekit.agents.utils import is_given
from livekit.plugins import openai


class ScriptedLLM(llm.LLM):
    """`turn` is set by the caller before each utterance (`turns()`'s `before_turn`); every
    request made during it (a preemptive one LiveKit throws away too) is counted against it and,
    with `replies`, says reply `turn - 1` (cycled). `prepare()` tokenizes the replies first."""

    def __init__(
        self, plugin: openai.LLM, replies: Sequence[str] | None = None, pieces: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__()
        self.plugin = plugin  # its own events go nowhere: this wrapper's stream reports the request
        self.replies = list(replies) if replies else None
        self.turn = 1
        self.requests: Counter[int] = Counter()
        # reply -> its tokens of text; shared by the plugins of one run (same model), filled once
        self._pieces = pieces if pieces is not None else {}

    @property
    def model(self) -> str:
        return self.plugin.model

    @property
    def provider(self) -> str:
        return self.plugin.provider

    def reply(self, turn: int) -> str | None:
        return None if not self.replies else self.replies[(turn - 1) % len(self.replies)]

    async def prepare(self, base_url: str, token: str | None = None) -> None:
        """Each reply as the model's tokens of text, from vLLM's own /tokenize and /detokenize
        (`base_url`: the OpenAI one, .../v1)."""
        root = base_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession(headers=headers) as http:

            async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
                async with http.post(f"{root}{path}", json={"model": self.plugin.model, **body}) as resp:
                    resp.raise_for_status()
                    return await resp.json()

            for reply in self.replies or []:
                if reply in self._pieces:
                    continue
                ids = (await post("/tokenize", {"prompt": reply, "add_special_tokens": False}))["tokens"]
                texts = [""]
                for k in range(1, len(ids) + 1):  # prefixes: a character split across tokens stays whole
                    texts.append((await post("/detokenize", {"tokens": ids[:k]}))["prompt"])
                self._pieces[reply] = [b[len(a) :] for a, b in zip(texts, texts[1:], strict=False)]

    @contextlib.asynccontextmanager
    async def turns(
        self, base_url: str, token: str | None = None, first_turn: int = 1
    ) -> AsyncIterator[Callable[[int], Awaitable[None]]]:
        """One call with this model: the replies tokenized (`prepare`), then `run_call`'s
        `before_turn`, which makes the call's turn n the script's turn `first_turn + n - 1`; the
        plugin closed after."""
        await self.prepare(base_url, token)

        async def before_turn(n: int) -> None:
            self.turn = first_turn + n - 1

        try:
            yield before_turn
        finally:
            await self.aclose()

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = llm.llm.DEFAULT_API_CONNECT_OPTIONS,
        **kwargs: Any,
    ) -> llm.LLMStream:
        self.requests[self.turn] += 1
        reply = self.reply(self.turn)
        pieces = None if reply is None else self._pieces[reply]
        return _ScriptedStream(self, pieces, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options, **kwargs)

    def _request(self, pieces: list[str] | None, chat_ctx: llm.ChatContext, **kwargs: Any) -> llm.LLMStream:
        """The plugin's request, asking for exactly len(pieces) tokens when scripted. The plugin's
        own extra_body wins over a request's, so the change goes into its options, for this
        request only (chat() builds the request synchronously: nothing else runs in between)."""
        once = APIConnectOptions(max_retry=0, timeout=kwargs.pop("conn_options").timeout)
        if pieces is None:
            return self.plugin.chat(chat_ctx=chat_ctx, conn_options=once, **kwargs)
        opts = self.plugin._opts
        body = dict(opts.extra_body) if is_given(opts.extra_body) else {}
        n = len(pieces)
        self.plugin._opts = dataclasses.replace(
            opts, max_completion_tokens=n, extra_body={**body, "ignore_eos": True, "min_tokens": n}
        )
        try:
            return self.plugin.chat(chat_ctx=chat_ctx, conn_options=once, **kwargs)
        finally:
            self.plugin._opts = opts

    async def aclose(self) -> None:
        await self.plugin.aclose()


class _ScriptedStream(llm.LLMStream):
    """The plugin's stream, each text delta replaced by the script's next token of text."""

    _llm_attempt_span_name: ClassVar[str | None] = None  # the plugin's stream has its own

    def __init__(
        self,
        owner: ScriptedLLM,
        pieces: list[str] | None,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
        **kwargs: Any,
    ) -> None:
        super().__init__(owner, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._owner = owner
        self._pieces = pieces
        self._kwargs = kwargs

    async def _run(self) -> None:
        pieces = list(self._pieces or [])
        request = self._owner._request(
            self._pieces, self._chat_ctx, tools=self._tools, conn_options=self._conn_options, **self._kwargs
        )
        last: llm.ChatChunk | None = None
        async with request as stream:
            async for chunk in stream:
                if self._pieces is not None and chunk.delta is not None and chunk.delta.content:
                    text, pieces = "".join(pieces[:1]), pieces[1:]
                    chunk = chunk.model_copy(update={"delta": chunk.delta.model_copy(update={"content": text})})
                    last = chunk
                self._event_ch.send_nowait(chunk)
        if pieces and last is not None:  # vLLM sent two tokens in one delta somewhere: the rest, now
            self._event_ch.send_nowait(
                last.model_copy(update={"delta": last.delta.model_copy(update={"content": "".join(pieces)})})
            )


def read_replies(path: str) -> list[str]:
    """One reply a line; blank lines and `#` comments skipped. A clear ValueError for a file
    with none."""
    with open(path, encoding="utf-8") as f:
        replies = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    if not replies:
        raise ValueError(f"{path}: no replies (one a line)")
    return replies
