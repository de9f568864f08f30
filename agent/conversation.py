"""What the LLM is sent each turn.

History: the system prompt (settings, unchanged for the whole call: no time of day, no turn count)
always goes first, then as many of the latest turns as fit the context budget. Old turns are dropped
whole (a user message and everything answering it), and several at once: after a trim the history
is well under the budget, so the next turns only append to it and vLLM's prefix cache keeps
matching the whole earlier prompt until the next trim, instead of missing from the second message
on every turn once the budget is reached.

What of a reply is spoken, and so kept in the history, is decided in services/tts/text
(markup_stream.py), beside the TTS service's own cleanup.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from livekit.agents import llm

from configs import Settings
from configs.settings import HUB_PREFIX

log = logging.getLogger("halfsec.agent")

TokenCounter = Callable[[str], int]

# ChatML (Qwen2.5, SmolLM2) wraps each message as <|im_start|>role\n ... <|im_end|>\n: 5 tokens.
MESSAGE_OVERHEAD_TOKENS = 5
# BPE vocabularies like these average ~4 characters a token on English; without the tokenizer we
# count 3, so the estimate errs toward trimming early rather than overrunning the context.
CHARS_PER_TOKEN_ESTIMATE = 3
# Tokens the count may miss even with the tokenizer (the chat template's own text, tool schemas).
CONTEXT_MARGIN = 0.05
# After a trim the history fills at most this share of the budget: the following turns append to
# an unchanged prefix (cache hits) until it is full again.
TRIM_TO = 0.6


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)


@lru_cache(maxsize=4)
def _tokenizer_counter(path: str) -> TokenCounter:
    from tokenizers import Tokenizer  # ships with faster-whisper's dependencies

    tokenizer = Tokenizer.from_file(path)
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def token_counter(settings: Settings) -> tuple[TokenCounter, str]:
    """The LLM's own tokenizer when its tokenizer.json is on this machine (the model directory,
    or the hub cache), else the character estimate; and which one it is, for the log."""
    model = settings.llm.model
    path: str | None = None
    if model.startswith(HUB_PREFIX):
        try:
            from huggingface_hub import try_to_load_from_cache  # looks, never downloads

            found = try_to_load_from_cache(model[len(HUB_PREFIX) :], "tokenizer.json")
            path = found if isinstance(found, str) else None
        except ImportError:
            path = None
    elif (Path(settings.model_path(model)) / "tokenizer.json").is_file():
        path = str(Path(settings.model_path(model)) / "tokenizer.json")
    if path is not None:
        try:
            return _tokenizer_counter(path), f"tokenizer {path}"
        except Exception as exc:  # noqa: BLE001 (tokenizers raises a bare Exception for a bad file)
            log.warning("cannot load %s (%s): estimating tokens from characters", path, exc)
    return estimate_tokens, f"{CHARS_PER_TOKEN_ESTIMATE} characters a token (estimate)"


def history_budget(settings: Settings) -> int:
    """Prompt tokens a turn may send: the context less the reply's room, less the margin."""
    room = settings.llm.max_model_len - settings.llm.max_tokens
    return int(room * (1 - CONTEXT_MARGIN))


class HistoryWindow:
    """Trims each turn's chat context to a token budget, keeping the system prompt first and the
    kept history's beginning fixed between trims. One per call: it remembers what it dropped."""

    def __init__(self, budget_tokens: int, count: TokenCounter = estimate_tokens) -> None:
        if budget_tokens < 1:
            raise ValueError(f"history budget must be at least one token (got {budget_tokens})")
        self.budget_tokens = budget_tokens
        self._count = lru_cache(maxsize=2048)(count)
        self._dropped: set[str] = set()

    def cost(self, item: llm.ChatItem) -> int:
        if isinstance(item, llm.ChatMessage):
            text = item.text_content or ""
        elif isinstance(item, llm.FunctionCall):
            text = f"{item.name}({item.arguments})"
        elif isinstance(item, llm.FunctionCallOutput):
            text = item.output
        else:  # handoffs and config updates are never sent to the model
            return 0
        return self._count(text) + MESSAGE_OVERHEAD_TOKENS

    def trim(self, chat_ctx: llm.ChatContext) -> llm.ChatContext:
        """A copy of `chat_ctx` that fits the budget (the last turn is always kept)."""
        items = list(chat_ctx.items)
        n_head = 0
        while n_head < len(items) and _is_system(items[n_head]):
            n_head += 1
        head, turns = items[:n_head], _turns([i for i in items[n_head:] if i.id not in self._dropped])
        used = sum(map(self.cost, head)) + sum(self.cost(i) for turn in turns for i in turn)
        if used > self.budget_tokens:
            target = self.budget_tokens * TRIM_TO
            while len(turns) > 1 and used > target:
                oldest = turns.pop(0)
                used -= sum(map(self.cost, oldest))
                self._dropped.update(i.id for i in oldest)
            log.debug("history trimmed to %d of %d tokens (%d turns)", used, self.budget_tokens, len(turns))
        return llm.ChatContext(head + [i for turn in turns for i in turn])


def _is_system(item: llm.ChatItem) -> bool:
    return isinstance(item, llm.ChatMessage) and item.role in ("system", "developer")


def _turns(items: list[llm.ChatItem]) -> list[list[llm.ChatItem]]:
    """Split at each user message: a turn is the caller's words and everything answering them."""
    turns: list[list[llm.ChatItem]] = []
    for item in items:
        if not turns or (isinstance(item, llm.ChatMessage) and item.role == "user"):
            turns.append([])
        turns[-1].append(item)
    return turns
