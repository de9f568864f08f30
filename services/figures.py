"""A bench's figures as a table, WERs as percentages (`halfsec bench asr` and `tts`): one column of
values, or one per run compared (`bench asr --telephone`: 16 kHz beside 8 kHz μ-law)."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table


def figures_table(title: str, figures: Mapping[str, object]) -> Table:
    return compared_table(title, {"value": figures})


def compared_table(title: str, columns: Mapping[str, Mapping[str, object]]) -> Table:
    """One row per figure, one column per run (a figure one run lacks is "-")."""
    table = Table(title=title)
    table.add_column("figure")
    for name in columns:
        table.add_column(name, justify="right")
    keys = list(dict.fromkeys(k for figures in columns.values() for k in figures))
    for key in keys:
        table.add_row(key, *(_cell(key, figures.get(key, "-")) for figures in columns.values()))
    return table


def _cell(key: str, value: object) -> str:
    return f"{value:.1%}" if "wer" in key and isinstance(value, float) else str(value)
