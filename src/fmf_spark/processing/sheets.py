"""A spreadsheet's cells as a reader sees them: formatted values, titles, tables.

Two things a grid of raw values gets wrong: numbers print as Python floats (``13.0``
for a cell that shows ``13``, ``0.125`` for ``12.5%``), and a sheet is not one table
(title rows above the header, blank rows, several tables one under the other).
:func:`format_value` applies the common Excel number formats (decimals, thousands
separators, percentages, currency symbols, dates and times); :func:`sheet_blocks`
splits a sheet into title paragraphs and tables.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

_QUOTED = re.compile(r'"[^"]*"|\\.')
_BRACKET_CURRENCY = re.compile(r"\[\$([^\]-]*)[^\]]*\]")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_CURRENCY = "$€£¥"


def _number(value: float, fmt: str) -> str:
    section = original = fmt.split(";", 1)[0]
    currency = ""
    match = _BRACKET_CURRENCY.search(section)
    if match:
        currency = match.group(1)
    else:  # "$", \€ or a bare symbol
        currency = next((c for c in _BRACKETS.sub("", section) if c in _CURRENCY), "")
    section = _BRACKETS.sub(
        "", _QUOTED.sub(lambda m: currency if currency and currency in m.group(0) else "", section)
    )
    digits = section.split(".", 1)
    decimals = (
        len(re.match(r"[0#?]*", digits[1]).group(0)) if len(digits) > 1 else 0  # type: ignore[union-attr]
    )
    if "%" in section:
        return f"{value * 100:.{decimals}f}%"
    if re.search(r"E[+-]", section, re.I):
        return f"{value:.{decimals}E}"
    grouping = "," if "," in digits[0] and re.search(r"[0#],[0#]", digits[0]) else ""
    text = f"{abs(value):{grouping}.{decimals}f}"
    sign = "-" if value < 0 and float(text.replace(",", "")) != 0 else ""
    if currency:
        first_digit = re.search(r"[0#?]", original)
        where = original.find("[$") if match else original.find(currency)
        before = first_digit is None or where < first_digit.start()
        return f"{sign}{currency}{text}" if before else f"{sign}{text} {currency}"
    return sign + text


def format_value(value: Any, fmt: str | None) -> str:
    """A cell's value as Excel shows it under number format ``fmt``.

    Example:
        >>> [format_value(13.0, "General"), format_value(0.125, "0.0%"),
        ...  format_value(1234.5, "#,##0.00"), format_value(3.5, '"$"#,##0.00')]
        ['13', '12.5%', '1,234.50', '$3.50']
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    fmt = fmt or "General"
    if isinstance(value, dt.datetime):
        lower = _QUOTED.sub("", fmt).lower()
        has_time = "h" in lower or (value.time() != dt.time(0) and "general" in lower)
        if not has_time:
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S" if "s" in lower else "%Y-%m-%d %H:%M")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int | float):
        if fmt in ("General", "@") or not any(c in fmt for c in "0#?"):
            if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
                return str(int(value))
            return f"{value:.15g}" if isinstance(value, float) else str(value)
        return _number(float(value), fmt)
    return str(value)


def _filled(row: Sequence[Any]) -> list[int]:
    return [i for i, v in enumerate(row) if v is not None and str(v).strip() != ""]


def _header_like(row: Sequence[Any]) -> bool:
    cells = _filled(row)
    return len(cells) >= 2 and all(isinstance(row[i], str) for i in cells)


def sheet_blocks(values: list[list[Any]], texts: list[list[str]]) -> list[str | list[list[str]]]:
    """Split a sheet into title paragraphs (``str``) and tables (rows of text).

    Args:
        values: the raw cell values (types tell a header from data).
        texts: the same cells formatted for display.

    Blank rows end a block. A block's leading rows with one filled cell are titles
    (above a table, or a sheet of notes). A block whose first row is all text above a
    row with a number, or spans other columns, starts a new table; any other block
    continues the table before it (blank rows inside a table are dropped).
    """
    blocks: list[list[int]] = []
    current: list[int] = []
    for i, row in enumerate(values):
        if _filled(row):
            current.append(i)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    width = max((max(_filled(r)) + 1 for r in values if _filled(r)), default=0)
    out: list[str | list[list[str]]] = []
    table: list[int] | None = None
    span: tuple[int, int] | None = None

    def flush() -> None:
        if table:
            lo = min(min(_filled(values[i])) for i in table)
            hi = max(max(_filled(values[i])) for i in table) + 1
            for_rows = [texts[i][lo:hi] for i in table]
            out.append([r + [""] * (hi - lo - len(r)) for r in for_rows])

    for block in blocks:
        rows = list(block)
        while rows and width > 1 and len(_filled(values[rows[0]])) == 1:
            out_title = texts[rows[0]][_filled(values[rows[0]])[0]].strip()
            rows.pop(0)
            if table is not None:
                flush()
                table, span = None, None
            out.append(out_title)
        if not rows:
            continue
        first = values[rows[0]]
        block_span = (
            min(min(_filled(values[i])) for i in rows),
            max(max(_filled(values[i])) for i in rows),
        )
        has_data_below = len(rows) > 1 and any(
            not isinstance(values[rows[1]][i], str) for i in _filled(values[rows[1]])
        )
        new_table = (
            table is None
            or (_header_like(first) and has_data_below)
            or (span is not None and block_span != span and _header_like(first))
        )
        if new_table or table is None:
            flush()
            table, span = list(rows), block_span
        else:
            table.extend(rows)
    flush()
    return out
