"""The filing dossier PDF (备案材料): parsed back (Chinese text, masked ID only, embedded photos) and rendered to PNG."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from dossierhelp import FULL_ID, resolved_case

from verifier.batch.dossier_pdf import render
from verifier.store.db import Database
from verifier.store.dossier import gather
from verifier.store.photostore import PhotoStore

pypdf = pytest.importorskip("pypdf", reason="pypdf (test extra) parses the dossier back")
pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 (test extra) renders the dossier")


def _text(pdf: bytes) -> str:
    """All page text as PDFium (Chromium's reader) extracts it, whitespace removed (lines wrap anywhere).

    pypdf reads fpdf2's ToUnicode map for the CFF font with a NUL before each glyph, so PDFium is the text witness."""
    doc = pdfium.PdfDocument(pdf)
    return re.sub(r"\s+", "", "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc))))


@pytest.fixture
def dossier_pdf(db: Database, store: PhotoStore, faces: Path) -> bytes:
    case_id = resolved_case(db, store, faces)
    with db.session() as s:
        return render(gather(s, store, case_id))


def test_dossier_text_is_chinese_and_complete(dossier_pdf: bytes) -> None:
    reader = pypdf.PdfReader(io.BytesIO(dossier_pdf))
    box = reader.pages[0].mediabox
    assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (210, 297)  # A4
    text = _text(dossier_pdf)
    for expected in ("学生身份复核备案材料", "张三", "21110101009001", "S2021001", "录取照片", "毕业照片", "录取系统", "毕业拍摄",
                     "相似度score0.330", "通过阈值accept0.40", "不一致阈值reject0.28", "介于两阈值之间",
                     "相似度处于人工复核区间", "Similarityliesinthemanual-reviewband", "王老师", "case.resolve",
                     "与本人当面核对一致", "经复核确认为本人", "准予注册"):
        assert expected in text, expected
    assert "110101********1234" in text or re.search(r"1101\*+1234", text), "masked 身份证号 shown"
    assert FULL_ID not in text and FULL_ID not in dossier_pdf.decode("latin-1")


def test_dossier_embeds_font_and_photos(dossier_pdf: bytes) -> None:
    reader = pypdf.PdfReader(io.BytesIO(dossier_pdf))
    page = reader.pages[0]
    assert len(page.images) == 2 and all(img.image.size[0] > 50 for img in page.images)
    fonts = [f.get_object() for f in page["/Resources"]["/Font"].values()]
    descendants = [d.get_object() for f in fonts for d in f.get("/DescendantFonts", [])]
    assert any("/FontFile3" in d["/FontDescriptor"] or "/FontFile2" in d["/FontDescriptor"] for d in descendants), "CJK font embedded"


def test_dossier_renders_photos_and_glyphs(dossier_pdf: bytes) -> None:
    doc = pdfium.PdfDocument(dossier_pdf)
    page = doc[0]
    img = np.asarray(page.render(scale=2).to_pil().convert("L"), dtype=np.float32)
    h, w = img.shape
    assert img.std() > 10, "page is not blank"
    # Photos sit left under the second heading; the title is centred at the top.
    photo = img[int(h * 0.22):int(h * 0.45), int(w * 0.08):int(w * 0.35)]
    assert photo.std() > 25 and (photo < 200).mean() > 0.3, "photo region holds image content"
    title = img[int(h * 0.03):int(h * 0.08), int(w * 0.3):int(w * 0.7)]
    assert (title < 128).mean() > 0.02, "title glyphs drawn (not tofu-free blank)"
    blank = pdfium.PdfDocument.new()
    blank.new_page(page.get_width(), page.get_height())
    empty = np.asarray(blank[0].render(scale=2).to_pil().convert("L"), dtype=np.float32)
    assert np.abs(img[: h // 2] - empty[: h // 2]).mean() > 5


def test_cli_writes_pdf_and_zip_0600(db_url: str, home: Path, faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    import zipfile

    from verifier.cli import main as cli
    from verifier.store import schema
    from verifier.store.connect import open_database

    monkeypatch.setenv("VERIFIER_HOME", str(home))
    schema.upgrade(db_url)
    db = open_database(db_url)
    store = PhotoStore.for_home(home)
    one = resolved_case(db, store, faces)
    two = resolved_case(db, store, faces, college="法学院", ksh="21110101009002", outcome="impersonation")
    db.dispose()
    out = tmp_path / "out"
    assert cli.main(["cases", "dossier", str(one), "--out", str(out), "--db", db_url]) == 0
    pdf = out / f"dossier-case-{one}.pdf"
    assert pdf.stat().st_mode & 0o777 == 0o600 and "张三" in _text(pdf.read_bytes())
    assert cli.main(["cases", "dossier", str(one), str(two), "999999", "--out", str(out), "--db", db_url]) == 1
    assert "STORE_CASE_UNKNOWN" in capsys.readouterr().err
    bundle = out / "dossiers.zip"
    assert bundle.stat().st_mode & 0o777 == 0o600
    with zipfile.ZipFile(bundle) as z:
        assert sorted(z.namelist()) == sorted([f"dossier-case-{one}.pdf", f"dossier-case-{two}.pdf"])
        blocked = _text(z.read(f"dossier-case-{two}.pdf"))
    assert "冒名顶替，不予注册" in blocked and "不予注册" in blocked
    db = open_database(db_url)
    with db.session() as s:
        from verifier.store import audit

        assert [e.actor for e in audit.events_for(s, "case", two) if e.action == "case.dossier"] == [f"cli:{__import__('getpass').getuser()}"]
    db.dispose()


def test_purged_photo_is_named_not_fatal(db: Database, store: PhotoStore, faces: Path) -> None:
    from sqlalchemy import update

    from verifier.store.models import Photo

    case_id = resolved_case(db, store, faces)
    with db.write_session() as s:
        s.execute(update(Photo).where(Photo.kind == "graduation").values(file_path=None))
    with db.session() as s:
        pdf = render(gather(s, store, case_id))
    assert "照片已清除purged" in _text(pdf) and len(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].images) == 1


def test_group_case_dossier_names_every_member(db: Database, store: PhotoStore, faces: Path) -> None:
    from storehelp import add_students

    from verifier.store import cases, members
    from verifier.store.duplicates import record_candidate
    from verifier.store.photos import add_photo

    with db.write_session() as s:
        a, b = add_students(s, 2, college="法学院")
        pa = add_photo(s, store, a, "admission", (faces / "obama_1.jpg").read_bytes(), source="录取系统")
        pb = add_photo(s, store, b, "admission", (faces / "obama_2.jpg").read_bytes(), source="录取系统")
        pair = record_candidate(s, pa, pb, "buffalo_l", 0.81, None).candidate
        case = cases.open_case(s, "duplicate_face", "duplicate", pair.id, a.id, actor="sweep").case
        members.add_pairs(s, case, [pair], "sweep")
        case_id = case.id
    with db.session() as s:
        d = gather(s, store, case_id)
        pdf = render(d)
    assert [st.ksh for st in d.students] == [a.ksh, b.ksh] and len(d.photos) == 2
    text = _text(pdf)
    assert a.ksh in text and b.ksh in text and "学生0" in text and "学生1" in text
    assert "重复人脸阈值duplicate" in text and "疑似同一人" in text and "相似度score0.810" in text
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].images) == 2
