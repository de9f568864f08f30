"""Following turns.jsonl files as they grow: each poll returns the records appended since the last.

A run directory may gain files (the worker writes one per room), so it is searched again on every
poll. Only whole lines are consumed: a line still being written is read on a later poll, and a line
that is not JSON (a writer killed mid-line, then a new one appending) is skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..budget import Budget
from ..records import TURNS_FILE, upgrade


class TurnFollower:
    def __init__(self, source: str | os.PathLike[str], budget: Budget) -> None:
        self.source = Path(source)
        self.budget = budget
        self._offsets: dict[Path, int] = {}

    def files(self) -> list[Path]:
        # Nothing there yet is fine: the agent may not have written its first turn.
        if self.source.is_dir():
            return sorted(self.source.rglob(TURNS_FILE))
        return [self.source] if self.source.is_file() else []

    def poll(self) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        for path in self.files():
            new.extend(self._read_new(path))
        return new

    def _read_new(self, path: Path) -> list[dict[str, Any]]:
        offset = self._offsets.get(path, 0)
        try:
            size = path.stat().st_size
            if size < offset:  # truncated or replaced: start over
                offset = 0
            if size == offset:
                return []
            with path.open("rb") as f:
                f.seek(offset)
                data = f.read(size - offset)
        except FileNotFoundError:
            self._offsets.pop(path, None)
            return []
        whole = data.rfind(b"\n") + 1  # up to the last complete line
        self._offsets[path] = offset + whole
        out = []
        for line in data[:whole].splitlines():
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(row, dict):
                out.append(upgrade(row, self.budget))
        return out
