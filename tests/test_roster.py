"""Roster loading: encodings, delimiters, header aliases, Excel numbers, bad rows with line numbers, unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from verifier.common.reasons import Severity, VerifierError
from verifier.photos.roster import Student, id_number_problem, load_roster

HEADER = "考生号,姓名,学号,身份证号,学院,学习中心,入学批次"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def make_id(first17: str) -> str:
    """A synthetic 身份证号 with the right GB 11643 check digit."""
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


ID_OK = make_id("11010520000101123")
ID_BAD = ID_OK[:-1] + ("0" if ID_OK[-1] != "0" else "1")

ROWS = [
    f"20210101000001,张三,2021001,{ID_OK},计算机学院,北京学习中心,2021秋",
    "20210101000002,李四,2021002,,外国语学院,上海学习中心,2021秋",
    "20210101000003,欧阳娜娜,2021003,,计算机学院,北京学习中心,2022春",
]


def write_csv(tmp_path: Path, lines: list[str], encoding: str, name: str = "roster.csv") -> Path:
    path = tmp_path / name
    path.write_bytes("\r\n".join(lines).encode(encoding) + b"\r\n")
    return path


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030")],
)
def test_csv_encodings(tmp_path: Path, encoding: str, detected: str) -> None:
    path = write_csv(tmp_path, [HEADER, *ROWS], encoding)
    if encoding in ("gbk", "gb18030"):
        with pytest.raises(UnicodeDecodeError):
            path.read_bytes().decode("utf-8")
    load = load_roster(path)
    assert load.format == "csv" and load.encoding == detected
    assert load.rejected == [] and load.warnings == []
    assert list(load.students) == ["20210101000001", "20210101000002", "20210101000003"]
    s = load.students["20210101000003"]
    assert (s.name, s.student_no, s.college, s.centre, s.intake) == ("欧阳娜娜", "2021003", "计算机学院", "北京学习中心", "2022春")
    assert load.students["20210101000001"].id_number == ID_OK
    assert set(load.columns) == {"ksh", "name", "student_no", "id_number", "college", "centre", "intake"}


def test_excel_unicode_text_export(tmp_path: Path) -> None:
    """Excel's "Unicode text" export: UTF-16 with BOM, tab-separated."""
    lines = [line.replace(",", "\t") for line in [HEADER, *ROWS]]
    path = tmp_path / "unicode.txt"
    path.write_bytes("\r\n".join(lines).encode("utf-16"))
    load = load_roster(path)
    assert (load.encoding, load.delimiter, len(load.students)) == ("utf-16", "\t", 3)


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_delimiter_sniffing(tmp_path: Path, delimiter: str) -> None:
    lines = [line.replace(",", delimiter) for line in [HEADER, *ROWS]]
    load = load_roster(write_csv(tmp_path, lines, "utf-8"))
    assert load.delimiter == delimiter
    assert len(load.students) == 3 and load.students["20210101000002"].college == "外国语学院"


def test_english_aliases_spaces_and_full_width_headers(tmp_path: Path) -> None:
    lines = [
        " ＫＳＨ ,Name , Student_No,ID_Card,College,Learning Centre,Batch",
        "20210101000001,张三,2021001,,计算机学院,北京学习中心,2021秋",
    ]
    load = load_roster(write_csv(tmp_path, lines, "utf-8"))
    assert load.columns["ksh"] == "ＫＳＨ" and load.columns["centre"] == "Learning Centre"
    s = load.students["20210101000001"]
    assert (s.name, s.student_no, s.centre, s.intake) == ("张三", "2021001", "北京学习中心", "2021秋")

    other = ["exam_no;candidate name;center", "20210101000009;王五;广州学习中心"]
    with pytest.raises(VerifierError) as exc:
        load_roster(write_csv(tmp_path, other, "utf-8", "b.csv"))
    assert exc.value.reason.code == "ROSTER_MISSING_COLUMN"
    other[0] = "exam_no;name;center"
    assert load_roster(write_csv(tmp_path, other, "utf-8", "c.csv")).students["20210101000009"].centre == "广州学习中心"


def test_malformed_rows_reported_with_line_numbers(tmp_path: Path) -> None:
    lines = [
        "2021秋季新生名单",  # title row above the header (line 1)
        " 考生号 , 姓名 ,学院",  # header with spaces (line 2)
        "20210101000001,张三,计算机学院",  # 3
        "20210101000002,,计算机学院",  # 4: no name
        ",李四,计算机学院",  # 5: no 考生号
        "2021010100000X,王五,计算机学院",  # 6: bad 考生号
        "",  # 7: blank, ignored
        '20210101000005,"赵,六",计算机学院',  # 8: quoted comma
        "20210101000001,张三,计算机学院",  # 9: duplicate
        "　２０２１０１０１０００００６　,孙七,计算机学院",  # 10: full-width digits and spaces
    ]
    load = load_roster(write_csv(tmp_path, lines, "gbk"))
    assert load.header_line == 2
    assert sorted(load.students) == ["20210101000001", "20210101000005", "20210101000006"]
    assert load.students["20210101000005"].name == "赵,六"
    got = [(e.line, e.code) for e in load.rejected]
    assert got == [
        (4, "ROSTER_ROW_MISSING_NAME"),
        (5, "ROSTER_ROW_MISSING_KSH"),
        (6, "ROSTER_KSH_INVALID"),
        (9, "ROSTER_KSH_DUPLICATE"),
    ]
    dup = load.rejected[-1]
    assert dup.ksh == "20210101000001" and "line 3" in dup.detail and dup.severity is Severity.FAIL


def test_duplicate_ksh_keeps_first_row(tmp_path: Path) -> None:
    lines = [HEADER, ROWS[0], ROWS[1], "20210101000001,张三丰,2021009,,数学学院,北京学习中心,2021秋"]
    load = load_roster(write_csv(tmp_path, lines, "utf-8-sig"))
    assert load.students["20210101000001"].name == "张三"
    assert [(e.line, e.code) for e in load.rejected] == [(4, "ROSTER_KSH_DUPLICATE")]
    assert "rows differ" in load.rejected[0].detail


def test_id_number_checks_are_warnings_and_never_shown(tmp_path: Path) -> None:
    lines = [HEADER, ROWS[0], f"20210101000002,李四,2021002,{ID_BAD},计算机学院,北京学习中心,2021秋"]
    load = load_roster(write_csv(tmp_path, lines, "utf-8"))
    assert set(load.students) == {"20210101000001", "20210101000002"}  # still loaded
    assert [(e.line, e.code, e.severity) for e in load.warnings] == [(3, "ROSTER_ID_NUMBER_INVALID", Severity.WARN)]
    assert ID_BAD not in load.warnings[0].detail
    s = load.students["20210101000001"]
    assert s.id_masked == ID_OK[:4] + "*" * 10 + ID_OK[-4:]
    assert ID_OK not in repr(s) and ID_OK not in repr(load)
    h = s.id_hash(b"key-1")
    assert len(h) == 64 and h == s.id_hash(b"key-1") and h != s.id_hash(b"key-2") and ID_OK not in h
    assert Student("1", "x").id_hash(b"k") == "" and Student("1", "x").id_masked == ""


def test_id_number_rules() -> None:
    assert id_number_problem("11010519491231002X") is None  # the standard's own example
    assert id_number_problem("11010519491231002x") is None
    assert id_number_problem(ID_OK) is None
    assert id_number_problem(ID_BAD) is not None
    assert id_number_problem(make_id("11010520001301123")) is not None  # month 13
    assert id_number_problem("110105491231002") is None  # 15-digit first generation
    assert id_number_problem("1101051949") is not None


def test_excel_text_tricks_in_csv(tmp_path: Path) -> None:
    lines = [
        "考生号,姓名,学号",
        '="20210101000001",张三,="0012"',
        "'20210101000002,李四,2021002.0",
        "20210101000003.0,王五,",
        "2.0210101000004E+13,赵六,",
        "2.02101E+13,孙七,",  # Excel's display form: digits lost
    ]
    load = load_roster(write_csv(tmp_path, lines, "utf-8"))
    assert sorted(load.students) == ["20210101000001", "20210101000002", "20210101000003", "20210101000004"]
    assert load.students["20210101000001"].student_no == "0012"
    assert load.students["20210101000002"].student_no == "2021002"
    assert [(e.line, e.code) for e in load.rejected] == [(6, "ROSTER_KSH_INVALID")]
    assert "scientific" in load.rejected[0].detail


def test_custom_ksh_pattern(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["考生号,姓名", "21110101150001,张三", "A2021-77,李四"], "utf-8")
    assert list(load_roster(path).students) == ["21110101150001"]
    assert set(load_roster(path, ksh_pattern=r"^[A-Z0-9-]+$").students) == {"21110101150001", "A2021-77"}


def test_xlsx_numeric_cells(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "学生名单"
    ws.append(["2021秋季学期新生名单"])  # title row
    ws.append(["考生号", "姓名", "学号", "身份证号", "学院", "学习中心", "入学批次"])  # row 2
    ws.append([20210101000001, "张三", 2021001, ID_OK, "计算机学院", "北京学习中心", "2021秋"])  # 3: int cells
    ws.append([20210101000002.0, "李四", 2021002.0, None, "计算机学院", "北京学习中心", "2021秋"])  # 4: float cells
    ws.append(["2.0210101000003E+13", "王五", "2021003.0", None, "外国语学院", "上海学习中心", "2022春"])  # 5: text
    ws.append([20210101000004, None, None, None, "计算机学院", None, None])  # 6: no name
    ws.append([None, None, None, None, None, None, None])  # 7: empty
    ws.append([20210101000005, "赵六", None, int(make_id("11010520000101124")[:-1] + "0"), None, None, None])  # 8
    ws.cell(row=3, column=1).number_format = "0.00E+00"  # shown in scientific notation, stored exactly
    path = tmp_path / "roster.xlsx"
    wb.save(path)

    load = load_roster(path)
    assert (load.format, load.encoding, load.sheet, load.header_line) == ("xlsx", "xlsx", "学生名单", 2)
    assert sorted(load.students) == ["20210101000001", "20210101000002", "20210101000003", "20210101000005"]
    assert load.students["20210101000001"].student_no == "2021001"
    assert load.students["20210101000002"].student_no == "2021002"
    assert load.students["20210101000003"].student_no == "2021003"
    assert load.students["20210101000001"].id_number == ID_OK
    assert load.students["20210101000003"].college == "外国语学院"
    assert [(e.line, e.code) for e in load.rejected] == [(6, "ROSTER_ROW_MISSING_NAME")]


def test_xlsx_english_headers_on_second_sheet(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.append(["说明：本表由教务系统导出"])
    ws = wb.create_sheet("data")
    ws.append(["candidate_no", "name", "college", "centre"])
    ws.append([20210101000007, "钱八", "计算机学院", "北京学习中心"])
    path = tmp_path / "r.xlsx"
    wb.save(path)
    load = load_roster(path)
    assert load.sheet == "data" and load.students["20210101000007"].centre == "北京学习中心"


@pytest.mark.parametrize(
    ("content", "name", "code"),
    [
        (b"", "empty.csv", "ROSTER_EMPTY"),
        (b"\xef\xbb\xbf\r\n  \r\n", "blank.csv", "ROSTER_EMPTY"),
        ("备注,编号\n无,1\n".encode(), "nohdr.csv", "ROSTER_NO_HEADER"),
        ("学院,学习中心\n计算机学院,北京学习中心\n".encode(), "optional-only.csv", "ROSTER_MISSING_COLUMN"),
        ("考生号,学院\n20210101000001,计算机学院\n".encode("gbk"), "noname.csv", "ROSTER_MISSING_COLUMN"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "old.xls", "ROSTER_FORMAT_UNSUPPORTED"),
        (b"%PDF-1.7\n...", "roster.pdf", "ROSTER_FORMAT_UNSUPPORTED"),
        (b"PK\x03\x04not really a zip", "broken.xlsx", "ROSTER_UNREADABLE"),
        (b"ksh,name\n\xff\xff\x80\x80\n", "garbage.csv", "ROSTER_UNREADABLE"),
    ],
)
def test_unusable_files_raise_with_code(tmp_path: Path, content: bytes, name: str, code: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VerifierError) as exc:
        load_roster(path)
    assert exc.value.reason.code == code


def test_missing_column_names_what_is_missing(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["考生号,学院", "20210101000001,计算机学院"], "utf-8")
    with pytest.raises(VerifierError) as exc:
        load_roster(path)
    assert exc.value.reason.code == "ROSTER_MISSING_COLUMN" and "姓名" in exc.value.detail


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for path in (tmp_path / "nope.csv", tmp_path):
        with pytest.raises(VerifierError) as exc:
            load_roster(path)
        assert exc.value.reason.code == "ROSTER_UNREADABLE"


def test_empty_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    Workbook().save(path)
    with pytest.raises(VerifierError) as exc:
        load_roster(path)
    assert exc.value.reason.code == "ROSTER_EMPTY"
