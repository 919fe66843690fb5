"""Student rosters (名单) as exported by the student information system: CSV or XLSX in, students out.

A roster that cannot be read at all raises VerifierError with a ROSTER_* code.
A bad row is reported with its line number and reason code and skipped; the
rest of the roster is used. 身份证号 stays in memory only: reports use the
masked form, storage uses a keyed hash.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import hmac
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from verifier.common.choices import DEFAULT_KSH_PATTERN
from verifier.common.reasons import REASONS, Severity, VerifierError
from verifier.common.settings import Settings

HEADER_SEARCH_ROWS = 20
# An XLSX with more parts than this is no spreadsheet export (a roster has about ten).
MAX_XLSX_PARTS = 1_000
_SCAN_CHUNK = 1024 * 1024
DELIMITERS = (",", ";", "\t")

REQUIRED_FIELDS = ("ksh", "name")
FIELDS = ("ksh", "name", "student_no", "id_number", "college", "centre", "intake")

# Canonical field -> accepted header names, compared after _header_key().
_ALIASES: dict[str, tuple[str, ...]] = {
    "ksh": ("考生号", "考生编号", "考号", "准考证号", "ksh", "examno", "examnumber", "candidateno", "candidatenumber", "candidateid"),
    "name": ("姓名", "学生姓名", "考生姓名", "xm", "name", "studentname", "fullname"),
    "student_no": ("学号", "学生学号", "xh", "studentno", "studentnumber", "studentid"),
    "id_number": (
        "身份证号",
        "身份证号码",
        "身份证",
        "证件号码",
        "证件号",
        "sfzh",
        "idnumber",
        "idcard",
        "idcardno",
        "idcardnumber",
        "idno",
    ),
    "college": ("学院", "院系", "所在学院", "学院名称", "college", "faculty", "school"),
    "centre": (
        "学习中心",
        "学习中心名称",
        "教学点",
        "centre",
        "center",
        "learningcentre",
        "learningcenter",
        "studycentre",
        "studycenter",
    ),
    "intake": ("入学批次", "批次", "入学年级", "intake", "batch", "cohort", "enrolmentbatch", "enrollmentbatch"),
}

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and encrypted .xlsx)
_ZIP_MAGIC = b"PK\x03\x04"
_BINARY_MAGICS = (b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_SCI = re.compile(r"^[+-]?(\d+)(?:\.(\d*))?[eE][+-]?\d+$")


def _header_key(text: Any) -> str:
    """Normalise a header cell: full-width to half-width, no spaces, underscores, hyphens or case."""
    s = unicodedata.normalize("NFKC", "" if text is None else str(text))
    return re.sub(r"[\s_\-.*:()\[\]]+", "", s).lower()


_ALIAS_INDEX: dict[str, str] = {_header_key(a): f for f, names in _ALIASES.items() for a in names}


@dataclass(frozen=True)
class RosterLimits:
    """Caps that keep a hostile roster (zip bomb, huge cell, millions of rows) from exhausting memory or CPU."""

    max_file_bytes: int
    max_unzipped_bytes: int
    max_strings: int
    max_rows: int
    max_columns: int
    max_cell_chars: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "RosterLimits":
        """The roster_* caps of the settings (defaults and VERIFIER_ROSTER_* variables in common.settings)."""
        return cls(
            settings.roster_max_file_bytes,
            settings.roster_max_unzipped_bytes,
            settings.roster_max_strings,
            settings.roster_max_rows,
            settings.roster_max_columns,
            settings.roster_max_cell_chars,
        )


@dataclass(frozen=True)
class Student:
    """One roster row. id_number is raw and sensitive: never log or write it; use id_masked or id_hash."""

    ksh: str
    name: str
    student_no: str = ""
    id_number: str = field(default="", repr=False)
    college: str = ""
    centre: str = ""
    intake: str = ""

    def id_hash(self, key: bytes) -> str:
        """Keyed HMAC-SHA256 (hex) of the 身份证号, for storing and matching without the number ("" if absent)."""
        if not self.id_number:
            return ""
        return hmac.new(key, self.id_number.upper().encode("ascii", "replace"), hashlib.sha256).hexdigest()

    @property
    def id_masked(self) -> str:
        """Display form of the 身份证号: first 4 and last 4 characters, the rest starred."""
        n = self.id_number
        if not n:
            return ""
        if len(n) <= 8:
            return "*" * len(n)
        return n[:4] + "*" * (len(n) - 8) + n[-4:]


@dataclass(frozen=True)
class RowError:
    """A roster row that was rejected (severity fail) or loaded with a warning (severity warn)."""

    line: int  # 1-based line in the CSV file, or row number in the sheet
    code: str
    detail: str = ""
    ksh: str = ""

    @property
    def severity(self) -> Severity:
        return REASONS[self.code].severity

    def to_dict(self) -> dict[str, Any]:
        row = REASONS[self.code]
        return {
            "line": self.line,
            "code": self.code,
            "severity": row.severity.value,
            "message_zh": row.zh,
            "message_en": row.en,
            "detail": self.detail,
            "ksh": self.ksh,
        }


@dataclass
class RosterLoad:
    """What load_roster read: students by 考生号, rejected rows, warnings, and how the file was understood."""

    students: dict[str, Student]
    rejected: list[RowError]
    encoding: str  # "utf-8", "utf-8-sig", "gb18030", or "xlsx"
    format: str  # "csv" | "xlsx"
    columns: dict[str, str]  # canonical field -> header text as written in the file
    warnings: list[RowError] = field(default_factory=list)
    path: Path | None = None
    ksh_pattern: str = DEFAULT_KSH_PATTERN
    header_line: int = 1
    delimiter: str | None = None
    sheet: str | None = None

    def summary(self) -> dict[str, Any]:
        """Counts and format facts, free of personal data, for logs and the CLI."""
        return {
            "format": self.format,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "sheet": self.sheet,
            "header_line": self.header_line,
            "columns": dict(self.columns),
            "students": len(self.students),
            "rejected": len(self.rejected),
            "warnings": len(self.warnings),
        }


def id_number_problem(number: str) -> str | None:
    """Check a 身份证号 against GB 11643 (18 characters, birth date, check digit); None when valid.

    15-digit first-generation numbers carry no check digit; their date is checked.
    """
    n = number.upper()
    if len(n) == 15 and n.isdigit():
        birth = "19" + n[6:12]
    elif len(n) == 18 and n[:17].isdigit() and (n[17].isdigit() or n[17] == "X"):
        birth = n[6:14]
    else:
        return "应为 18 位（末位可为 X）或 15 位数字 / must be 18 characters (last may be X) or 15 digits"
    try:
        _dt.date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
    except ValueError:
        return "出生日期无效 / birth date is not a valid date"
    if len(n) == 18:
        expected = _ID_CHECK[sum(int(d) * w for d, w in zip(n[:17], _ID_WEIGHTS)) % 11]
        if n[17] != expected:
            return "校验位不符 / check digit does not match"
    return None


def _cell_text(value: Any) -> str:
    """A cell as trimmed text; numbers (Excel numeric cells) become their exact digit strings."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return str(value).strip().strip("\u3000").strip()


def _code_text(raw: str) -> tuple[str, str | None]:
    """Normalise an identifier cell (考生号, 学号, 身份证号): half-width, Excel text tricks removed, numbers exact.

    Returns (text, problem) where problem explains a value that lost digits.
    """
    s = unicodedata.normalize("NFKC", raw).strip()
    if s.startswith('="') and s.endswith('"'):
        s = s[2:-1]
    s = s.lstrip("'").strip()
    s = re.sub(r"\s+", "", s)
    if re.fullmatch(r"\d+\.0+", s):
        return s.split(".", 1)[0], None
    m = _SCI.match(s)
    if m:
        try:
            value = Decimal(s)
        except InvalidOperation:
            return s, None
        if value < 0 or value != value.to_integral_value():
            return s, None
        digits = str(int(value))
        written = (m.group(1) + (m.group(2) or "")).lstrip("0")
        if len(written) < len(digits):
            return digits, "以科学计数法保存，位数可能已丢失 / stored in scientific notation, digits may have been lost"
        return digits, None
    return s, None


def _map_header(cells: Sequence[Any]) -> dict[str, int]:
    """Canonical field -> column index for the recognised headers of one row (first occurrence wins)."""
    found: dict[str, int] = {}
    for i, cell in enumerate(cells):
        f = _ALIAS_INDEX.get(_header_key(cell))
        if f and f not in found:
            found[f] = i
    return found


_Header = tuple[int | None, list[Any], dict[str, int], bool]


def _find_header(rows: Iterator[tuple[int, list[Any]]]) -> _Header:
    """Scan the first rows for the header (a row naming 考生号 and 姓名), skipping title rows above it.

    Returns (header line or None, its cells, field -> column, whether any non-empty row was seen);
    without a header, the cells and mapping of the row that named the most known columns.
    """
    best: tuple[list[Any], dict[str, int]] = ([], {})
    seen = 0
    for line, cells in rows:
        if not any(_cell_text(c) for c in cells):
            continue
        mapping = _map_header(cells)
        if all(f in mapping for f in REQUIRED_FIELDS):
            return line, cells, mapping, True
        if len(mapping) > len(best[1]) or seen == 0:
            best = (cells, mapping)
        seen += 1
        if seen >= HEADER_SEARCH_ROWS:
            break
    return None, best[0], best[1], seen > 0


def _raise_header_problem(cells: list[Any], mapping: dict[str, int], any_rows: bool) -> None:
    if not any_rows:
        raise VerifierError("ROSTER_EMPTY", detail="no rows / 没有数据行")
    if not mapping:
        raise VerifierError("ROSTER_NO_HEADER", detail="no known column names in the first rows / 前几行没有可识别的列名")
    missing = [f for f in REQUIRED_FIELDS if f not in mapping]
    labels = {"ksh": "考生号", "name": "姓名"}
    raise VerifierError(
        "ROSTER_MISSING_COLUMN",
        detail="missing / 缺少: " + ", ".join(labels[f] for f in missing),
        measured=[_cell_text(c) for c in cells if _cell_text(c)],
        limit=[labels[f] for f in REQUIRED_FIELDS],
    )


def _decode_text(data: bytes) -> tuple[str, str]:
    """Decode CSV bytes: UTF-8 (BOM or not) strictly, else GB18030 (a superset of GBK); else unreadable."""
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode("utf-8-sig")
        return text, "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        raise VerifierError("ROSTER_UNREADABLE", detail=f"not UTF-8 or GB18030 text at byte {exc.start}") from None


def _check_cells(cells: Sequence[Any], line: int, limits: RosterLimits) -> None:
    """Refuse a row wider than the column cap or holding a cell longer than the cell cap."""
    if len(cells) > limits.max_columns:
        raise VerifierError("ROSTER_TOO_MANY_COLUMNS", detail=f"row {line}", measured=len(cells), limit=limits.max_columns)
    for cell in cells:
        if isinstance(cell, str) and len(cell) > limits.max_cell_chars:
            raise VerifierError("ROSTER_CELL_TOO_LONG", detail=f"row {line}", measured=len(cell), limit=limits.max_cell_chars)


def _csv_rows(text: str, delimiter: str, limits: RosterLimits) -> Iterator[tuple[int, list[Any]]]:
    """Yield (first physical line of the record, fields); more records than the row cap refuse the roster."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    try:
        for n, fields in enumerate(reader, start=1):
            if n > limits.max_rows:
                raise VerifierError("ROSTER_TOO_MANY_ROWS", detail=f"more than {limits.max_rows} records", limit=limits.max_rows)
            _check_cells(fields, start, limits)
            yield start, fields
            start = reader.line_num + 1
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise VerifierError("ROSTER_CELL_TOO_LONG", detail=f"near line {reader.line_num}", limit=limits.max_cell_chars) from None
        raise VerifierError("ROSTER_UNREADABLE", detail=f"CSV error near line {reader.line_num}: {exc}") from None


def _choose_delimiter(text: str, limits: RosterLimits) -> tuple[str, _Header]:
    """Try comma, semicolon and tab (or Excel's `sep=` hint); keep the one under which a header row is found."""
    first = text.split("\n", 1)[0].strip()
    hint = first[4:5] if first.lower().startswith("sep=") and len(first) == 5 else None
    candidates = (hint,) if hint else DELIMITERS
    fallback: tuple[str, _Header] | None = None
    head = "\n".join(text.split("\n", 200)[:200])
    for d in candidates:
        found = _find_header(_csv_rows(head, d, limits))
        if found[0] is not None:
            return d, found
        if fallback is None or len(found[2]) > len(fallback[1][2]):
            fallback = (d, found)
    assert fallback is not None
    return fallback


def _rows_to_load(
    rows: Iterable[tuple[int, list[Any]]],
    header_line: int,
    mapping: dict[str, int],
    ksh_pattern: str,
) -> tuple[dict[str, Student], list[RowError], list[RowError]]:
    """Turn data rows into students; each bad row becomes a RowError with its line number."""
    pattern = re.compile(ksh_pattern)
    students: dict[str, Student] = {}
    first_line: dict[str, int] = {}
    rejected: list[RowError] = []
    warned: list[RowError] = []

    def get(cells: list[Any], f: str) -> str:
        i = mapping.get(f)
        return _cell_text(cells[i]) if i is not None and i < len(cells) else ""

    for line, cells in rows:
        if line <= header_line or not any(_cell_text(c) for c in cells):
            continue
        raw_ksh = get(cells, "ksh")
        ksh, lost = _code_text(raw_ksh)
        name = get(cells, "name")
        if not ksh:
            rejected.append(RowError(line, "ROSTER_ROW_MISSING_KSH"))
            continue
        if lost:
            rejected.append(RowError(line, "ROSTER_KSH_INVALID", lost, raw_ksh))
            continue
        if not pattern.search(ksh):
            rejected.append(RowError(line, "ROSTER_KSH_INVALID", f"does not match {ksh_pattern}", ksh))
            continue
        if not name:
            rejected.append(RowError(line, "ROSTER_ROW_MISSING_NAME", "", ksh))
            continue
        id_number, id_lost = _code_text(get(cells, "id_number"))
        id_number = id_number.upper()
        student = Student(
            ksh=ksh,
            name=name,
            student_no=_code_text(get(cells, "student_no"))[0],
            id_number=id_number,
            college=get(cells, "college"),
            centre=get(cells, "centre"),
            intake=get(cells, "intake"),
        )
        if ksh in students:
            same = students[ksh] == student
            detail = f"first on line {first_line[ksh]}" + ("; identical row / 内容完全相同" if same else "; rows differ / 内容不同")
            rejected.append(RowError(line, "ROSTER_KSH_DUPLICATE", detail, ksh))
            continue
        if id_number:
            problem = id_lost or id_number_problem(id_number)
            if problem:
                warned.append(RowError(line, "ROSTER_ID_NUMBER_INVALID", problem, ksh))
        students[ksh] = student
        first_line[ksh] = line
    return students, rejected, warned


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refused over max_bytes (checked by size first, then by what was actually read)."""
    try:
        if path.is_dir():
            raise VerifierError("ROSTER_UNREADABLE", detail="path is a directory / 路径是文件夹")
        size = path.stat().st_size
        if size > max_bytes:
            raise VerifierError("ROSTER_TOO_LARGE", measured=size, limit=max_bytes)
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise VerifierError("ROSTER_TOO_LARGE", detail="grew while being read", limit=max_bytes)
        return data
    except FileNotFoundError:
        raise VerifierError("ROSTER_UNREADABLE", detail="file not found / 文件不存在") from None
    except OSError as exc:
        raise VerifierError("ROSTER_UNREADABLE", detail=exc.strerror or type(exc).__name__) from None


def _load_csv(data: bytes, path: Path, ksh_pattern: str, limits: RosterLimits) -> RosterLoad:
    text, encoding = _decode_text(data)
    if not text.strip().strip("\ufeff"):
        raise VerifierError("ROSTER_EMPTY", detail="no text / 没有内容")
    if "\x00" in text[:4096]:
        raise VerifierError("ROSTER_FORMAT_UNSUPPORTED", detail="binary content, not CSV text")
    delimiter, (header_line, cells, mapping, any_rows) = _choose_delimiter(text, limits)
    if header_line is None:
        _raise_header_problem(cells, mapping, any_rows)
    assert header_line is not None
    students, rejected, warned = _rows_to_load(_csv_rows(text, delimiter, limits), header_line, mapping, ksh_pattern)
    return RosterLoad(
        students=students,
        rejected=rejected,
        encoding=encoding,
        format="csv",
        columns={f: _cell_text(cells[i]) for f, i in mapping.items()},
        warnings=warned,
        path=path,
        ksh_pattern=ksh_pattern,
        header_line=header_line,
        delimiter=delimiter,
    )


_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s/>]")


def _count_rows(chunks: Iterable[bytes], limit: int) -> int:
    """Count <row> elements in streamed sheet XML, stopping with ROSTER_TOO_MANY_ROWS past limit.

    Every match starts at a '<' and holds no other, so cutting each chunk at its last '<' loses none.
    """
    rows, tail = 0, b""
    for chunk in chunks:
        buf = tail + chunk
        cut = buf.rfind(b"<")
        if cut < 0:
            tail = b""
            continue
        rows += len(_ROW_TAG.findall(buf, 0, cut))
        tail = buf[cut:]
        if rows > limit:
            raise VerifierError("ROSTER_TOO_MANY_ROWS", measured=f">{limit}", limit=limit)
    rows += len(_ROW_TAG.findall(tail))
    if rows > limit:
        raise VerifierError("ROSTER_TOO_MANY_ROWS", measured=rows, limit=limit)
    return rows


def _check_shared_strings(chunks: Iterable[bytes], limits: RosterLimits) -> None:
    """Stream the shared-string table through expat: refuse too many strings or one longer than the cell cap.

    Character data is only counted, never gathered, so a 2 GB string costs a chunk of memory.
    """
    from xml.parsers import expat

    parser = expat.ParserCreate(namespace_separator=" ")
    state = {"strings": 0, "chars": 0}

    def start(name: str, _attrs: dict[str, str]) -> None:
        if name.rsplit(" ", 1)[-1] == "si":
            state["strings"] += 1
            state["chars"] = 0
            if state["strings"] > limits.max_strings:
                raise VerifierError("ROSTER_TOO_MANY_STRINGS", measured=f">{limits.max_strings}", limit=limits.max_strings)

    def text(data: str) -> None:
        state["chars"] += len(data)
        if state["chars"] > limits.max_cell_chars:
            raise VerifierError("ROSTER_CELL_TOO_LONG", detail=f"shared string {state['strings']}", measured=f">{limits.max_cell_chars}", limit=limits.max_cell_chars)

    parser.StartElementHandler = start
    parser.CharacterDataHandler = text
    parser.buffer_text = False
    try:
        for chunk in chunks:
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise VerifierError("ROSTER_UNREADABLE", detail=f"sharedStrings.xml is not XML ({expat.errors.messages.get(exc.code, exc.code)})") from None


def _scan_xlsx(data: bytes, limits: RosterLimits) -> None:
    """Check an XLSX before openpyxl reads it: parts and unzipped size from the central directory, then, while
    streaming the shared strings and every sheet, bytes actually inflated, string count and length, and rows.
    """
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise VerifierError("ROSTER_UNREADABLE", detail=f"not a readable XLSX workbook ({type(exc).__name__})") from None
    with archive:
        parts = archive.infolist()
        if len(parts) > MAX_XLSX_PARTS:
            raise VerifierError("ROSTER_UNZIPPED_TOO_LARGE", detail="too many parts", measured=len(parts), limit=MAX_XLSX_PARTS)
        declared = sum(p.file_size for p in parts)
        if declared > limits.max_unzipped_bytes:
            raise VerifierError("ROSTER_UNZIPPED_TOO_LARGE", detail="declared sizes", measured=declared, limit=limits.max_unzipped_bytes)
        budget = [limits.max_unzipped_bytes]

        def chunks(part: zipfile.ZipInfo) -> Iterator[bytes]:
            with archive.open(part) as fh:
                while chunk := fh.read(_SCAN_CHUNK):
                    budget[0] -= len(chunk)
                    if budget[0] < 0:
                        raise VerifierError("ROSTER_UNZIPPED_TOO_LARGE", detail="inflated past the cap", limit=limits.max_unzipped_bytes)
                    yield chunk

        try:
            for part in parts:
                name = part.filename.lower()
                if name.endswith("sharedstrings.xml"):
                    _check_shared_strings(chunks(part), limits)
                elif name.startswith("xl/worksheets/") and name.endswith(".xml"):
                    _count_rows(chunks(part), limits.max_rows)
        except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise VerifierError("ROSTER_UNREADABLE", detail=f"damaged XLSX part ({type(exc).__name__})") from None


def _load_xlsx(data: bytes, path: Path, ksh_pattern: str, limits: RosterLimits) -> RosterLoad:
    import zipfile

    from openpyxl import load_workbook

    _scan_xlsx(data, limits)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise VerifierError("ROSTER_UNREADABLE", detail=f"not a readable XLSX workbook ({type(exc).__name__})") from None
    try:
        best: tuple[list[Any], dict[str, int]] = ([], {})
        any_rows = False
        for ws in wb.worksheets:
            ws.reset_dimensions()  # exporters often write a wrong <dimension>; read every row present

            def sheet_rows(ws: Any = ws) -> Iterator[tuple[int, list[Any]]]:
                for i, row in enumerate(ws.iter_rows(values_only=True), start=1):
                    if i > limits.max_rows:  # row numbers that skip ahead are filled with empty rows
                        raise VerifierError("ROSTER_TOO_MANY_ROWS", detail=f"row {i}", limit=limits.max_rows)
                    _check_cells(row, i, limits)
                    yield i, list(row)

            header_line, cells, mapping, seen = _find_header(sheet_rows())
            any_rows = any_rows or seen
            if header_line is None:
                if len(mapping) > len(best[1]):
                    best = (cells, mapping)
                continue
            students, rejected, warned = _rows_to_load(sheet_rows(), header_line, mapping, ksh_pattern)
            return RosterLoad(
                students=students,
                rejected=rejected,
                encoding="xlsx",
                format="xlsx",
                columns={f: _cell_text(cells[i]) for f, i in mapping.items()},
                warnings=warned,
                path=path,
                ksh_pattern=ksh_pattern,
                header_line=header_line,
                sheet=ws.title,
            )
        _raise_header_problem(best[0], best[1], any_rows)
        raise AssertionError("unreachable")
    finally:
        wb.close()


def load_roster(path: Path | str, ksh_pattern: str = DEFAULT_KSH_PATTERN, limits: RosterLimits | None = None) -> RosterLoad:
    """Read a CSV or XLSX roster; bad rows are listed with line numbers, unreadable or oversized files raise VerifierError.

    limits defaults to the caps of Settings.from_env(), so every command applies the same ones.
    """
    path = Path(path)
    limits = limits or RosterLimits.from_settings(Settings.from_env())
    data = _read_bytes(path, limits.max_file_bytes)
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise VerifierError("ROSTER_EMPTY", detail="0 bytes or only whitespace", measured=len(data))
    if data.startswith(_ZIP_MAGIC):
        return _load_xlsx(data, path, ksh_pattern, limits)
    if data.startswith(_OLE2_MAGIC):
        raise VerifierError(
            "ROSTER_FORMAT_UNSUPPORTED",
            detail="legacy .xls or encrypted workbook: save as .xlsx or CSV / 旧版 .xls 或加密工作簿，请另存为 .xlsx 或 CSV",
        )
    if data.startswith(_BINARY_MAGICS):
        raise VerifierError("ROSTER_FORMAT_UNSUPPORTED", detail="binary file, not CSV or XLSX")
    return _load_csv(data, path, ksh_pattern, limits)
