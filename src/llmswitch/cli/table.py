"""Plain-text output for the CLI: aligned columns and ``key  value`` blocks, no colours."""

from __future__ import annotations

from collections.abc import Sequence

Cell = str | int | float | bool | None


def cell(value: Cell) -> str:
    """A value as a table shows it: ``-`` for None, ``yes``/``no`` for booleans."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _numeric(value: Cell) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], empty: str = "(none)") -> str:
    """Columns two spaces apart, numbers right-aligned; ``empty`` when there are no rows."""
    if not rows:
        return empty
    texts = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in texts)) for i, h in enumerate(headers)]
    right = [all(_numeric(row[i]) or row[i] is None for row in rows) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for text in texts:
        parts = [
            t.rjust(w) if r else t.ljust(w) for t, w, r in zip(text, widths, right, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, Cell]]) -> str:
    """``key  value`` lines with the values aligned."""
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k.ljust(width)}  {cell(v)}".rstrip() for k, v in pairs)
