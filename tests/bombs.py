"""Crafted hostile inputs for the limit tests: XLSX rosters that unzip to far more than they weigh, and JPEGs whose header lies."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

from openpyxl import Workbook

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _template() -> dict[str, bytes]:
    """The parts of a small real roster workbook (header 考生号/姓名 and one student), written by openpyxl."""
    wb = Workbook()
    ws = wb.active
    ws.append(["考生号", "姓名"])
    ws.append(["21110101150001", "张三"])
    buf = io.BytesIO()
    wb.save(buf)
    with zipfile.ZipFile(buf) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(path: Path, parts: dict[str, bytes], streamed: dict[str, Iterator[bytes]]) -> Path:
    """Write the workbook with some parts streamed (deflated chunk by chunk, never whole in memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in parts.items():
            if name not in streamed:
                zf.writestr(name, data)
        for name, chunks in streamed.items():
            with zf.open(name, "w", force_zip64=True) as fh:
                for chunk in chunks:
                    fh.write(chunk)
    return path


def _with_shared_strings(parts: dict[str, bytes]) -> dict[str, bytes]:
    """Make the sheet refer to shared string 0 in A3 and register a sharedStrings part (openpyxl writes inline ones otherwise)."""
    out = dict(parts)
    ct = out["[Content_Types].xml"].decode()
    if "sharedStrings" not in ct:
        override = '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        out["[Content_Types].xml"] = ct.replace("</Types>", override + "</Types>").encode()
    rels = out["xl/_rels/workbook.xml.rels"].decode()
    if "sharedStrings" not in rels:
        rel = '<Relationship Id="rIdSS" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
        out["xl/_rels/workbook.xml.rels"] = rels.replace("</Relationships>", rel + "</Relationships>").encode()
    sheet = out["xl/worksheets/sheet1.xml"].decode()
    out["xl/worksheets/sheet1.xml"] = sheet.replace("</sheetData>", '<row r="3"><c r="A3" t="s"><v>0</v></c></row></sheetData>').encode()
    return out


def xlsx_huge_shared_string(path: Path, chars: int) -> Path:
    """A roster whose shared-string table holds one string of `chars` characters (the issue's was 1.8 GB in 1.8 MB)."""

    def body() -> Iterator[bytes]:
        yield f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_MAIN}" count="1" uniqueCount="1"><si><t>'.encode()
        block = b"A" * (1 << 20)
        left = chars
        while left > 0:
            yield block[: min(left, len(block))]
            left -= len(block)
        yield b"</t></si></sst>"

    parts = _with_shared_strings(_template())
    return _write(path, parts, {"xl/sharedStrings.xml": body()})


def xlsx_many_strings(path: Path, count: int) -> Path:
    """A roster whose shared-string table holds `count` short distinct strings (memory grows per string, not per byte)."""

    def body() -> Iterator[bytes]:
        yield f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_MAIN}">'.encode()
        for start in range(0, count, 10_000):
            yield b"".join(b"<si><t>%d</t></si>" % i for i in range(start, min(count, start + 10_000)))
        yield b"</sst>"

    parts = _with_shared_strings(_template())
    return _write(path, parts, {"xl/sharedStrings.xml": body()})


def xlsx_lying_sizes(path: Path, chars: int, claimed: int) -> Path:
    """A roster whose shared-string part holds `chars` characters but whose zip headers claim `claimed` bytes."""
    parts = _with_shared_strings(_template())
    parts["xl/sharedStrings.xml"] = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_MAIN}"><si><t>{"A" * chars}</t></si></sst>'.encode()
    _write(path, parts, {})
    data = bytearray(path.read_bytes())
    name = b"xl/sharedStrings.xml"
    for sig, size_at, name_len_at, name_at in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        i = data.find(sig)
        while i >= 0:
            n = struct.unpack_from("<H", data, i + name_len_at)[0]
            if data[i + name_at : i + name_at + n] == name:
                struct.pack_into("<I", data, i + size_at, claimed)
            i = data.find(sig, i + 4)
    path.write_bytes(bytes(data))
    return path


def xlsx_many_rows(path: Path, rows: int) -> Path:
    """A roster with the header, one student, then `rows` rows of one number each (the issue's: 2 million in 157 KB)."""
    parts = _template()
    sheet = parts["xl/worksheets/sheet1.xml"]
    head, tail = sheet.split(b"</sheetData>", 1)

    def body() -> Iterator[bytes]:
        yield head
        row = b"<row><c><v>1</v></c></row>"  # no r attributes: identical rows, so it deflates ~1000:1
        full, rest = divmod(rows, 10_000)
        for _ in range(full):
            yield row * 10_000
        yield row * rest
        yield b"</sheetData>" + tail

    return _write(path, parts, {"xl/worksheets/sheet1.xml": body()})


def jpeg_claiming(width: int, height: int, quality: int = 75) -> bytes:
    """A tiny real JPEG (16x16 grey) whose SOF header is edited to claim width x height: a few hundred bytes, megapixels decoded."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 128, 128)).save(buf, "JPEG", quality=quality)
    data = bytearray(buf.getvalue())
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", data, i + 5, height, width)
            return bytes(data)
        i += 2 + length
    raise AssertionError("no SOF marker")
