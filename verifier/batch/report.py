"""Batch reports: report.csv, report.xlsx (Chinese headers, summary, flagged) and report.html.

Rows stream in from the store in roster order; only counts and the flagged
rows are kept in memory. The HTML page is self-contained (thumbnails
embedded) so it can be mailed to a college as one file.
"""

from __future__ import annotations

import base64
import html
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from verifier.common.files import open_output
from verifier.common.reasons import REASONS
from verifier.common.settings import cpu_count
from verifier.common.tabular import TableWriter
from verifier.batch.decision import DECISION_ZH, FLAGGED, StudentDecision
from verifier.batch.pairing import GRADUATION, Pairing
from verifier.store.models import REGISTRATION_ZH

COLUMNS = ["ksh", "student_no", "name", "college", "centre", "decision", "score", "reasons", "photo_issues", "registration"]
HEADERS_ZH = ["考生号", "学号", "姓名", "学院", "学习中心", "结论", "相似度", "原因", "照片问题", "学位注册"]
THUMB_WIDTH = 150
MAX_HTML_THUMBS = 5000


@dataclass(frozen=True)
class BatchRow:
    """One roster student's line in the reports."""

    ksh: str
    student_no: str
    name: str
    college: str
    centre: str
    decision: StudentDecision
    score: float | None
    reasons: list[str] = field(default_factory=list)
    photo_issues: list[str] = field(default_factory=list)
    admission_sha: str | None = None
    graduation_sha: str | None = None  # the probe photo's (graduation or ID card)
    registration: str = "pending"

    def values(self, chinese: bool = False) -> list:
        """Cells in COLUMNS order; `chinese` writes the decision as the offices read it."""
        score = "" if self.score is None else round(self.score, 4)
        decision = DECISION_ZH[self.decision] if chinese else self.decision.value
        registration = REGISTRATION_ZH.get(self.registration, self.registration) if chinese else self.registration
        return [self.ksh, self.student_no, self.name, self.college, self.centre, decision, score, ";".join(self.reasons), ";".join(self.photo_issues), registration]


def thumbnail(data: bytes | None, width: int = THUMB_WIDTH) -> str | None:
    """A small JPEG as a data: URI, or None when there is no decodable picture."""
    if not data:
        return None
    buf = np.frombuffer(data, np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_REDUCED_COLOR_2)  # JPEG decodes at half size directly: 3-4x faster
    if img is None or img.shape[1] < width:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        return None
    h, w = img.shape[:2]
    img = cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode() if ok else None


def _reason_text(code: str) -> str:
    row = REASONS.get(code.split(":")[-1])
    return f"{code} {row.zh} / {row.en}" if row else code


def _html_page(flagged: list[BatchRow], counts: Counter, thumbs: list[Future], run_label: str, pairing: Pairing = GRADUATION) -> str:
    colleges = sorted({r.college for r in flagged})
    options = "".join(f'<option value="{html.escape(c)}">{html.escape(c or "（未填）")}</option>' for c in colleges)
    summary = " · ".join(f"{DECISION_ZH[d]} {counts.get(d, 0)}" for d in StudentDecision)
    cards = []
    uris = (f.result() for f in thumbs)
    for i, r in enumerate(flagged):
        imgs = []
        for label, sha in (("录取照片 admission", r.admission_sha), (pairing.probe_label, r.graduation_sha)):
            uri = next(uris) if i < MAX_HTML_THUMBS else None
            img = f'<img src="{uri}" alt="{label}">' if uri else '<div class="none">无照片<br>no photo</div>'
            imgs.append(f"<figure>{img}<figcaption>{label}</figcaption></figure>")
        score = "—" if r.score is None else f"{r.score:.3f}"
        reasons = "".join(f"<li>{html.escape(_reason_text(c))}</li>" for c in r.reasons + r.photo_issues)
        cards.append(
            f'<section class="card {r.decision.value}" data-college="{html.escape(r.college)}">'
            f"<div class=photos>{''.join(imgs)}</div><div class=info>"
            f"<h2>{html.escape(r.name)} <small>{html.escape(r.ksh)} · {html.escape(r.student_no)}</small></h2>"
            f"<p>{html.escape(r.college)} · {html.escape(r.centre)}</p>"
            f'<p class="decision">{DECISION_ZH[r.decision]} ({r.decision.value}) · 相似度 score {score} · 学位注册 {REGISTRATION_ZH.get(r.registration, r.registration)}</p>'
            f"<ul>{reasons}</ul></div></section>"
        )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{pairing.title_zh} 需处理名单 / flagged students</title>
<style>
body{{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:1.5em;background:#f6f7f9;color:#222}}
.card{{display:flex;gap:1em;background:#fff;border-left:6px solid #999;margin:.8em 0;padding:.8em;border-radius:6px}}
.card.fail{{border-color:#c0392b}}.card.review{{border-color:#e67e22}}.card.photo_unusable{{border-color:#8e44ad}}.card.missing_photo{{border-color:#7f8c8d}}
.photos{{display:flex;gap:.5em}} figure{{margin:0;text-align:center;font-size:.8em}} img{{width:{THUMB_WIDTH}px;border:1px solid #ccc}}
.none{{width:{THUMB_WIDTH}px;height:{THUMB_WIDTH * 1.4:.0f}px;display:flex;align-items:center;justify-content:center;background:#eee;color:#777}}
h2{{margin:.1em 0;font-size:1.1em}} small{{color:#666;font-weight:normal}} .decision{{font-weight:bold}}
</style></head><body>
<h1>{pairing.title_zh}：需处理名单 <small>{pairing.title_en}: flagged students</small></h1>
<p>{html.escape(run_label)}</p><p>{summary}</p>
<label>学院 / college: <select id="college"><option value="">全部 / all</option>{options}</select></label>
<span id="shown"></span>
{''.join(cards) or '<p>没有需处理的学生 / nobody flagged</p>'}
<script>
const sel=document.getElementById('college');
function apply(){{let n=0;document.querySelectorAll('.card').forEach(c=>{{const on=!sel.value||c.dataset.college===sel.value;c.style.display=on?'':'none';n+=on}});document.getElementById('shown').textContent=' '+n+' 人';}}
sel.addEventListener('change',apply);apply();
</script></body></html>
"""


def write_reports(
    rows: Iterable[BatchRow], out_dir: Path, photo: Callable[[str | None], bytes | None], run_label: str = "", pairing: Pairing = GRADUATION
) -> tuple[list[Path], Counter]:
    """Write the three reports and count decisions; `photo(sha)` returns a stored picture's bytes (thumbnails).

    The flagged rows' thumbnails are made on other threads while the rows are still being written (OpenCV works
    outside the GIL, the spreadsheet writer inside it), so on two cores they cost almost no time.
    """
    with ThreadPoolExecutor(cpu_count(), thread_name_prefix="verifier-thumbs") as pool:
        return _write_reports(rows, out_dir, lambda sha: pool.submit(lambda: thumbnail(photo(sha))), run_label, pairing)


def _write_reports(
    rows: Iterable[BatchRow], out_dir: Path, thumb: Callable[[str | None], Future], run_label: str, pairing: Pairing = GRADUATION
) -> tuple[list[Path], Counter]:
    table = TableWriter(out_dir, "report", COLUMNS, HEADERS_ZH, "比对结果")
    by_unit: dict[tuple[str, str], Counter] = defaultdict(Counter)
    counts: Counter = Counter()
    flagged: list[BatchRow] = []
    thumbs: list[Future] = []
    try:
        for row in rows:
            table.add(row.values(), row.values(chinese=True))
            by_unit[(row.college, row.centre)][row.decision] += 1
            counts[row.decision] += 1
            if row.decision in FLAGGED:
                if len(flagged) < MAX_HTML_THUMBS:
                    thumbs += [thumb(row.admission_sha), thumb(row.graduation_sha)]
                flagged.append(row)
        decisions = list(StudentDecision)
        summary = [[college, centre, *(c[d] for d in decisions), sum(c.values())] for (college, centre), c in sorted(by_unit.items())]
        summary.append(["合计", "", *(counts[d] for d in decisions), sum(counts.values())])
        table.add_sheet("汇总", ["学院", "学习中心", *(DECISION_ZH[d] for d in decisions), "合计"], summary)
        table.add_sheet("需处理", HEADERS_ZH, [r.values(chinese=True) for r in flagged])
    except BaseException:
        table.discard()
        raise
    csv_path, xlsx_path = table.close()
    with open_output(Path(out_dir) / "report.html", "w", encoding="utf-8") as fh:
        fh.write(_html_page(flagged, counts, thumbs, run_label, pairing))
    return [csv_path, xlsx_path, Path(out_dir) / "report.html"], counts
