"""Streaming CSV + XLSX tables for the offices' reports.

CSV is UTF-8 with a BOM (Excel opens it as UTF-8) with machine-friendly
column names; XLSX carries the Chinese headers. Both are written to temp
files (0600) and renamed into place only when complete. Text that a
spreadsheet would run as a formula is neutralised.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verifier.common.files import OutputFile, disk_full_error, ensure_private_dir, is_disk_full

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t")


def printable(value: Any) -> Any:
    """Text without the control characters an XLSX cell cannot hold (tab and newline stay)."""
    if isinstance(value, str):
        return "".join(ch for ch in value if ch >= " " or ch in "\t\n")
    return value


def cell(value: Any) -> Any:
    """A value safe for a spreadsheet cell: no formula injection, no control characters."""
    value = printable(value)
    if isinstance(value, str) and value[:1] in FORMULA_PREFIXES:
        return "'" + value
    return value


class TableWriter:
    """One table streamed to `<stem>.csv` and the first sheet of `<stem>.xlsx`.

    More sheets (summaries, flagged lists) can be added before `close()`.
    """

    def __init__(self, out_dir: Path, stem: str, columns: Sequence[str], headers_zh: Sequence[str], sheet: str):
        from openpyxl import Workbook

        self.out_dir = ensure_private_dir(Path(out_dir))
        self.stem = stem
        self._csv_out = OutputFile(self.out_dir / f"{stem}.csv", "w", encoding="utf-8-sig", newline="")
        self._csv = csv.writer(self._csv_out.fh)
        self._csv.writerow(columns)
        self._book = Workbook(write_only=True)
        self._main = self._book.create_sheet(sheet)
        self._main.append(list(headers_zh))
        self.rows = 0

    def add(self, values: Sequence[Any], display: Sequence[Any] | None = None) -> None:
        """Append one row: `values` to the CSV, `display` (default: the same) to the XLSX."""
        try:
            self._csv.writerow(["" if v is None else cell(v) for v in values])
        except OSError as exc:
            self.discard()
            if is_disk_full(exc):
                raise disk_full_error(self._csv_out.path, exc) from None
            raise
        self._main.append([cell(v) for v in (values if display is None else display)])
        self.rows += 1

    def add_sheet(self, title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """An extra XLSX sheet (e.g. a summary)."""
        ws = self._book.create_sheet(title)
        ws.append(list(headers))
        for row in rows:
            ws.append([cell(v) for v in row])

    def close(self) -> tuple[Path, Path]:
        """Flush, fsync and move both files to their final names."""
        xlsx_out = OutputFile(self.out_dir / f"{self.stem}.xlsx", "wb")
        try:
            self._book.save(xlsx_out.fh)
        except BaseException as exc:
            xlsx_out.discard()
            self._csv_out.discard()
            if is_disk_full(exc):
                raise disk_full_error(xlsx_out.path, exc) from None  # type: ignore[arg-type]
            raise
        return self._csv_out.commit(), xlsx_out.commit()

    def discard(self) -> None:
        """Drop the temp files after an error."""
        self._csv_out.discard()
