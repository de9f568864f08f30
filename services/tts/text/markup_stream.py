"""Markdown and emoji out of a reply as the LLM streams it: what the agent's chunker cuts, what the
TTS is sent, and what the transcript and the chat history hold (the history then holds what the
caller heard, and no markdown for the model to copy).

LiveKit's own streaming markdown and emoji filters (the session's `tts_text_transforms`), plus
numbered and "•" list markers, which they leave in. Not markup.py's markdown-it: that reads a text
whole, block by block, and a reply is cut and spoken long before it is whole.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator

from livekit.agents.voice.transcription.filters import filter_emoji, filter_markdown

# A list marker at the start of a line: "1. ", "2) ", "• ". LiveKit's filter_markdown takes
# "- ", "+ " and "* " only.
_LIST_MARKER = re.compile(r"[ \t]*(?:\d{1,3}[.)]|[•‣◦·])[ \t]+")
# What a line may start with while it could still turn out to be such a marker.
_MARKER_PREFIX = re.compile(r"[ \t]*(?:\d{1,3}[.)]?|[•‣◦·])?")


async def drop_list_markers(text: AsyncIterable[str]) -> AsyncIterator[str]:
    """Numbered and "•" list markers removed from the start of each line, streaming: only the
    few characters at a line's start that could still be a marker are held back."""
    pending = ""  # the current line's start, while it could still be a marker
    at_line_start = True
    async for chunk in text:
        out = []
        for part in re.split(r"(\n)", chunk):
            if part == "\n":
                out.append(pending + part)
                pending, at_line_start = "", True
                continue
            if not at_line_start:
                out.append(part)
                continue
            pending += part
            if marker := _LIST_MARKER.match(pending):
                out.append(pending[marker.end() :])
            elif _MARKER_PREFIX.fullmatch(pending):
                continue  # "1" or "  2." so far: wait for what follows
            else:
                out.append(pending)
            pending, at_line_start = "", False
        if joined := "".join(out):
            yield joined
    if pending:
        yield pending


def strip_markup(text: AsyncIterable[str]) -> AsyncIterable[str]:
    """LLM text as it should be spoken and transcribed: no markdown, no emoji, no list markers."""
    return filter_emoji(filter_markdown(drop_list_markers(text)))
