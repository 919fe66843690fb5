"""The filing dossier as a PDF: one A4 document per case in Chinese (English alongside), fonts and photos embedded.

fpdf2 draws it because it embeds the project's CFF-outlined Noto Sans SC (a subset) where reportlab's TTF
embedding refuses PostScript outlines. Many cases go into one zip.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile

from sqlalchemy.orm import Session

from verifier.common.choices import PHOTO_KIND_ZH
from verifier.common.fonts import cjk_font_path
from verifier.store.dossier import Dossier, gather
from verifier.store.photostore import PhotoStore
from verifier.store.export import CASE_TYPE_ZH, OUTCOME_ZH, STATE_ZH
from verifier.store.models import REGISTRATION_ZH

CST = dt.timezone(dt.timedelta(hours=8))
PHOTO_W = 60.0
_OUTCOME_MEANING = {
    "same_person": "经复核确认为本人，继续办理学位注册 / same person: registration proceeds",
    "impersonation": "经复核认定冒名顶替，不予注册 / impersonation: not registered",
    "photo_replaced": "已采用新的录取照片 / a new admission photo was accepted",
    "dismissed": "案件不成立 / dismissed",
}


def _when(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(CST).strftime("%Y-%m-%d %H:%M")


def _score_words(d: Dossier) -> str:
    if d.score is None:
        return "未比对 / not compared"
    text = f"相似度 score {d.score:.3f}"
    if d.thresholds is not None and d.decision == "duplicate":
        t = d.thresholds
        text += f"（最高一对 highest pair）；重复人脸阈值 duplicate {t.duplicate:.2f}：" + ("达到阈值，疑似同一人" if d.score >= t.duplicate else "低于阈值")
    elif d.thresholds is not None:
        t = d.thresholds
        band = "高于通过阈值" if d.score >= t.accept else ("低于不一致阈值" if d.score < t.reject else "介于两阈值之间，需人工复核")
        text += f"；通过阈值 accept {t.accept:.2f}，不一致阈值 reject {t.reject:.2f}：{band}"
    return text + (f"（模型包 pack {d.pack}）" if d.pack else "")


def render(d: Dossier) -> bytes:
    """One case's dossier as PDF bytes."""
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_font("cjk", "", str(cjk_font_path()))
    pdf.set_title(f"身份复核备案 case {d.case_id}")
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(text: str) -> None:
        pdf.set_font("cjk", size=13)
        pdf.ln(2)
        pdf.multi_cell(width, 8, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=10)

    def line(text: str) -> None:
        pdf.multi_cell(width, 6, text, align="L", new_x="LMARGIN", new_y="NEXT")

    pdf.set_font("cjk", size=16)
    pdf.multi_cell(width, 10, "学生身份复核备案材料", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    line(f"案件编号 case {d.case_id} · {CASE_TYPE_ZH.get(d.case_type, d.case_type)} · {STATE_ZH.get(d.state, d.state)}")
    heading("一、学生身份 Student identity")
    if not d.students:
        line("（案件未关联学生 / no student）")
    for st in d.students:
        line(f"姓名 name：{st.name}    考生号 ksh：{st.ksh}    学号 student no.：{st.student_no or '—'}")
        line(f"身份证号（脱敏）ID number (masked)：{st.id_masked or '—'}")
        line(f"学院 college：{st.college or '—'}    学习中心 centre：{st.centre or '—'}    学位注册：{REGISTRATION_ZH.get(st.registration, st.registration)}")
    heading("二、比对照片 Photos compared")
    for row in range(0, len(d.photos), 3):
        if pdf.get_y() + PHOTO_W * 1.4 + 18 > pdf.h - pdf.b_margin:
            pdf.add_page()
        top = pdf.get_y()
        for i, p in enumerate(d.photos[row:row + 3]):
            x = pdf.l_margin + i * (PHOTO_W + 5)
            if p.data is not None:
                pdf.image(io.BytesIO(p.data), x=x, y=top, w=PHOTO_W, h=PHOTO_W * 1.4, keep_aspect_ratio=True)
            pdf.set_xy(x, top + PHOTO_W * 1.4 + 1)
            pdf.multi_cell(PHOTO_W, 5, f"{PHOTO_KIND_ZH.get(p.kind, p.kind)}\n入库 stored {_when(p.taken)}\n来源 source：{p.source or '—'}" + ("" if p.data else "\n（照片已清除 purged）"), align="L")
        pdf.set_xy(pdf.l_margin, top + PHOTO_W * 1.4 + 18)
    heading("三、比对结果 Scores and thresholds")
    line(_score_words(d))
    heading("四、检查原因 Reasons")
    for code, zh, en in d.reasons or [("—", "无", "none")]:
        line(f"[{code}] {zh} / {en}")
    heading("五、复核过程 Reviewers' decisions (audit log)")
    for e in d.events:
        line(f"{_when(e.at)}  {e.actor}  {e.action}" + (f"  {e.detail}" if e.detail else ""))
    for at, author, text in d.notes:
        line(f"{_when(at)}  {author} 备注 note：{text}")
    heading("六、复核结论 Outcome")
    line(_OUTCOME_MEANING.get(d.outcome or "", "尚未结案 / not resolved yet") + (f"（{OUTCOME_ZH[d.outcome]}）" if d.outcome in OUTCOME_ZH else ""))
    return bytes(pdf.output())


def bundle(files: dict[str, bytes]) -> bytes:
    """Several dossiers as one zip (name → PDF bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def file_name(case_id: int) -> str:
    """The PDF's name inside a zip or an output folder."""
    return f"dossier-case-{case_id}.pdf"


def package(session: Session, store: PhotoStore, case_ids: list[int]) -> tuple[str, bytes]:
    """One case's PDF, or a zip of several (name, bytes); STORE_CASE_UNKNOWN for an id with no case."""
    files = {file_name(i): render(gather(session, store, i)) for i in dict.fromkeys(case_ids)}
    if len(files) == 1:
        return next(iter(files.items()))
    return "dossiers.zip", bundle(files)
