"""Markdown and emoji out of a whole text (the service's `speakable`, normalize.py): the words a
renderer would show, block by block.

A reply the agent streams loses its markup on the way instead, before its chunker and its
transcript see it (markup_stream.py); by the time a chunk of it reaches the service this finds
nothing left to do. It is here for what other clients send: the service's protocol takes markdown.
"""

from __future__ import annotations

import emoji
from markdown_it import MarkdownIt

from .punctuation import pause_after

_MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_BLOCK_END = {"paragraph_close", "heading_close", "tr_close", "fence", "html_block"}


def markdown_to_text(text: str) -> str:
    """The words of a markdown text, block by block. A block that does not end where the voice
    pauses anyway (a heading, a bullet) and that another block follows gets a full stop, so the
    voice pauses there instead of running the lines together; the last block is left as it is (a
    clause chunk of a reply ends on a comma, or on nothing)."""
    blocks: list[str] = []
    current: list[str] = []
    numbered = False  # inside an ordered list that does not start at 1

    def end_block() -> None:
        words = " ".join("".join(current).split())
        current.clear()
        if words:
            blocks.append(words)

    for tok in _MD.parse(text):
        if tok.type == "inline":
            for child in tok.children or []:
                if child.type in ("text", "code_inline"):
                    current.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    current.append(" ")
                elif child.type == "image":
                    current.append(child.content)  # its alt text
        elif tok.type == "ordered_list_open":
            # "1999. That was..." parses as a list starting at 1999: a sentence, so its number
            # stays; the numbers of a list that starts at 1 are only markup
            numbered = tok.attrGet("start") not in (None, 1)
        elif tok.type == "list_item_open" and numbered:
            current.append(f"{tok.info}. ")
        elif tok.type in ("th_close", "td_close"):
            current.append(", ")
        elif tok.type == "code_block":  # indented text: from an LLM, an accident, not code
            current.append(tok.content)
        elif tok.type in _BLOCK_END:
            if tok.type == "tr_close" and current[-1:] == [", "]:
                current.pop()  # a row ends on its last cell, not on a comma
            end_block()
        # fenced code, raw HTML and rules are not read aloud
    end_block()
    ended = [b if pause_after(b) else b + "." for b in blocks[:-1]]
    return " ".join(ended + blocks[-1:])


def drop_emoji(text: str) -> str:
    """`text` with each emoji (skin tones and joined sequences whole) replaced by a space."""
    return emoji.replace_emoji(text, " ")
