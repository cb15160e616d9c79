"""Tables people open in Excel (reports, the service ledger): one way to write them, safe
from formulas hidden in a name or a title."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

Sheet = tuple[str, Sequence[str], Iterable[Sequence[Any]]]  # title, header, rows
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_workbook(sheets: Iterable[Sheet], target: Path | BinaryIO) -> None:
    """An Excel workbook of these sheets, to a file or a stream (a download). Text stays
    text: openpyxl would store `=HYPERLINK(...)` written in a title as a formula, which
    Excel then runs."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    for title, head, rows in sheets:
        ws = book.create_sheet(title)
        ws.append(list(head))
        for row in rows:
            cells = []
            for value in row:
                if isinstance(value, str):
                    cell = WriteOnlyCell(ws, value=value)
                    cell.data_type = "s"
                    cells.append(cell)
                else:
                    cells.append(value)
            ws.append(cells)
    book.save(target)


def csv_text(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV (UTF-8 with a BOM, so Excel reads Chinese right); a text cell that would start a
    formula is quoted with a leading apostrophe."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)
    for row in rows:
        writer.writerow(
            [f"'{v}" if isinstance(v, str) and v.startswith(_FORMULA_START) else v for v in row]
        )
    return out.getvalue()
