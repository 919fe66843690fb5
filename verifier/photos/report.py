"""Photo-check reports for the offices: report.csv (UTF-8 with BOM, opens in Excel), report.xlsx, results.jsonl.

Rows are written as results stream in; each file appears under its final
name only when complete (temp file + rename).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from verifier.photos.checks import CheckResult
from verifier.common.files import OutputFile, writable_dir
from verifier.common.tabular import cell

HEADERS = ["文件", "考生号", "规格", "结论", "原因代码", "原因", "测量值", "限值", "宽度", "高度", "文件大小（字节）", "人脸数"]
STATUS_ZH = {"pass": "通过", "warn": "警告", "fail": "不通过"}
CSV_NAME, XLSX_NAME, JSONL_NAME = "report.csv", "report.xlsx", "results.jsonl"


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def report_row(result: CheckResult) -> list[Any]:
    """One spreadsheet row (Chinese-first) for one result."""
    m = result.metrics
    return [
        result.file,
        result.ksh or "",
        result.profile,
        STATUS_ZH[result.status],
        "; ".join(r.code for r in result.reasons),
        "; ".join(f"{r.message_zh}" for r in result.reasons),
        "; ".join(_json(r.measured) for r in result.reasons),
        "; ".join(_json(r.limit) for r in result.reasons),
        m.get("width", ""),
        m.get("height", ""),
        m.get("bytes", ""),
        m.get("face_count", ""),
    ]


class ReportWriter:
    """Streams results into report.csv, results.jsonl and report.xlsx in one folder."""

    def __init__(self, out_dir: Path):
        from openpyxl import Workbook

        self.out_dir = writable_dir(Path(out_dir), "OUTPUT_NOT_WRITABLE")
        self._csv_out = OutputFile(self.out_dir / CSV_NAME, "w", encoding="utf-8-sig", newline="")
        self._csv = csv.writer(self._csv_out.fh)
        self._csv.writerow(HEADERS)
        try:
            self._jsonl_out = OutputFile(self.out_dir / JSONL_NAME, "w", encoding="utf-8")
        except BaseException:
            self._csv_out.discard()
            raise
        self._jsonl = self._jsonl_out.fh
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet("照片检查")
        self._sheet.append(HEADERS)
        self.count = 0

    def add(self, result: CheckResult) -> None:
        """Write one result to all three files."""
        row = [cell(v) for v in report_row(result)]
        self._csv.writerow(row)
        self._jsonl.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        self._sheet.append(row)
        self.count += 1

    def close(self) -> list[Path]:
        """Finish the files and move them to their final names."""
        xlsx_out = OutputFile(self.out_dir / XLSX_NAME, "wb")
        try:
            self._book.save(xlsx_out.fh)
        except BaseException:
            xlsx_out.discard()
            self.discard()
            raise
        return [self._csv_out.commit(), self._jsonl_out.commit(), xlsx_out.commit()]

    def discard(self) -> None:
        """Remove the temporary files (after an error)."""
        self._csv_out.discard()
        self._jsonl_out.discard()
