"""The durable per-turn log: one JSON object per line, appended, flushed and fsynced per turn.

A crash (even `kill -9`) loses at most the turn in flight; readers skip a torn last line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .trace import TurnRecord


class TurnLog:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, record: TurnRecord) -> None:
        self._file.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TurnLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_turns(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the records of a turns.jsonl, skipping a torn (half-written) line."""
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
