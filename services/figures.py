"""A bench's figures as a two-column table, WERs as percentages (`halfsec bench asr` and `tts`)."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table


def figures_table(title: str, figures: Mapping[str, object]) -> Table:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:.1%}" if "wer" in key and isinstance(value, float) else str(value))
    return table
