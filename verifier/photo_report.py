"""Photo-check reports for the offices: report.csv (UTF-8 with BOM, opens in Excel), report.xlsx, results.jsonl.

Rows are written as results stream in; each file appears under its final
name only when complete (temp file + rename).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .checks import CheckResult
from .fsutil import ensure_private_dir
from .tabular import cell

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

        self.out_dir = ensure_private_dir(Path(out_dir))
        self._tmp: dict[str, str] = {}
        self._csv_fh = self._open(CSV_NAME, "w", encoding="utf-8-sig", newline="")
        self._csv = csv.writer(self._csv_fh)
        self._csv.writerow(HEADERS)
        self._jsonl = self._open(JSONL_NAME, "w", encoding="utf-8")
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet("照片检查")
        self._sheet.append(HEADERS)
        self.count = 0

    def _open(self, name: str, mode: str, **kw: Any) -> io.TextIOWrapper:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.out_dir)
        os.fchmod(fd, 0o600)
        self._tmp[name] = tmp
        return os.fdopen(fd, mode, **kw)

    def add(self, result: CheckResult) -> None:
        """Write one result to all three files."""
        row = [cell(v) for v in report_row(result)]
        self._csv.writerow(row)
        self._jsonl.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        self._sheet.append(row)
        self.count += 1

    def close(self) -> list[Path]:
        """Finish the files and move them to their final names."""
        for fh in (self._csv_fh, self._jsonl):
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        fd, tmp = tempfile.mkstemp(prefix=f".{XLSX_NAME}.", suffix=".tmp", dir=self.out_dir)
        os.close(fd)
        os.chmod(tmp, 0o600)
        self._book.save(tmp)
        self._tmp[XLSX_NAME] = tmp
        out = []
        for name, tmp in self._tmp.items():
            os.replace(tmp, self.out_dir / name)
            out.append(self.out_dir / name)
        return out

    def discard(self) -> None:
        """Remove the temporary files (after an error)."""
        for fh in (self._csv_fh, self._jsonl):
            fh.close()
        for tmp in self._tmp.values():
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
