"""The agent's tools: functions the LLM may call mid-turn (LiveKit runs them and sends the result
back to the model for the spoken answer).

A phone caller asks the time or the day; a model cannot know it, and a wrong guess is worse than
none. The answer is a sentence the model can read out nearly as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from livekit.agents import llm
from livekit.agents.llm import function_tool

from configs import Settings

Clock = Callable[[ZoneInfo], datetime]


def spoken_time(moment: datetime) -> str:
    """'3:04 PM on Tuesday, 22 November 2026 (Europe/London time)': the words a caller hears."""
    hour = moment.hour % 12 or 12
    zone = getattr(moment.tzinfo, "key", None) or moment.tzname() or "local"
    return (
        f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'} on {moment:%A}, "
        f"{moment.day} {moment:%B %Y} ({zone} time)"
    )


def current_time_tool(timezone: str, clock: Clock = datetime.now) -> llm.FunctionTool:
    zone = ZoneInfo(timezone)

    @function_tool
    async def current_time() -> str:
        """Get the current time and date. Call this when the caller asks what time it is,
        what day or date it is, or anything that depends on the time now."""
        return spoken_time(clock(zone))

    return current_time


def agent_tools(settings: Settings, clock: Clock = datetime.now) -> list[llm.Tool | llm.Toolset]:
    """The tools the agent offers the model: none without a tool-call parser, since vLLM refuses
    requests with tools then (and a template without tools would not show them anyway), and none
    when `tools.enabled` is off."""
    if not settings.tools.enabled or not settings.llm.tool_call_parser:
        return []
    return [current_time_tool(settings.tools.timezone, clock)]
