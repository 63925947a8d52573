"""Tables for reports: rows of figures as text or markdown."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["markdown_table", "text_table"]


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _grid(rows: Sequence[dict], columns: Sequence[str] | None):
    columns = list(columns or (rows[0].keys() if rows else []))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    return columns, cells, widths


def text_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """Formats rows (dicts) as a plain fixed-width text table.

    Args:
        rows: One dict per row.
        columns: Column order; defaults to the keys of the first row.
            Defaults to `None`.

    Returns:
        The table as a string.

    Example:
    >>> print(text_table([{"model": "int8", "size_kb": 12.5}]))
    model  size_kb
    int8   12.5
    """
    columns, cells, widths = _grid(rows, columns)
    lines = [columns] + cells
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """Formats rows (dicts) as a markdown table, aligned for reading as text too.

    Args:
        rows: One dict per row.
        columns: Column order; defaults to the keys of the first row.
            Defaults to `None`.

    Returns:
        The table as a string.

    Example:
    >>> print(markdown_table([{"model": "int8", "size_kb": 12.5}]))
    | model | size_kb |
    | ----- | ------- |
    | int8  | 12.5    |
    """
    columns, cells, widths = _grid(rows, columns)

    def line(values):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])
