"""Report exports (CSV with BOM or XLSX, Chinese headers) for academic affairs, limited to the key's scope."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import Response

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from verifier.store import audit, export
from verifier.store.models import CaseMember, Student

from api.auth import ACADEMIC, check_college, require, scope_clause
from api.keys import Principal
from api.schemas import ExportFormat, ExportKind
from api.state import AppState, get_state

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])
MEDIA = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _groups_outside(s: Session, who: Principal) -> set[int]:
    """Ids of group cases with a member outside the key's scope: the export leaves them out, as the cases API does."""
    member = aliased(Student)
    q = select(CaseMember.case_id).join(member, member.id == CaseMember.student_id).where(~scope_clause(who, member)).distinct()
    return set(s.scalars(q))


def _in_scope(rows: Iterator[list[Any]], headers: list[str], who: Principal, hidden: frozenset[int] | set[int] = frozenset()) -> Iterator[list[Any]]:
    college, centre = (headers.index(h) if h in headers else None for h in ("学院", "学习中心"))
    case_id = headers.index("案件编号") if "案件编号" in headers else None
    for row in rows:
        if case_id is not None and row[case_id] in hidden:
            continue
        if who.sees(row[college] if college is not None else None, row[centre] if centre is not None else None):
            yield row


@router.get("/{kind}", response_class=Response, responses={200: {"content": {MEDIA["csv"]: {}, MEDIA["xlsx"]: {}}}})
def export_report(
    kind: ExportKind = PathParam(),
    format: ExportFormat = Query(ExportFormat.xlsx),
    state_: str | None = Query(None, alias="state", max_length=32, description="cases: state; comparisons: decision; students: status"),
    college: str | None = Query(None, max_length=200),
    state: AppState = Depends(get_state),
    who: Principal = Depends(require(ACADEMIC)),
) -> Response:
    """Cases, comparisons or students as a file; the export is audited."""
    check_college(who, college)
    db = state.database()
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        out = Path(tmp) / f"export.{format.value}"
        with db.session() as s:
            tbl = export.table(s, kind.value, state_, college)
            if who.scoped:
                hidden = _groups_outside(s, who) if kind.value == "cases" else set()
                tbl = export.Table(tbl.headers, _in_scope(tbl.rows, tbl.headers, who, hidden))
            n = export.write(tbl, format.value, out)
        data = out.read_bytes()
    db.transaction(lambda s: audit.record(s, who.actor, "export", "export", kind.value, after={"format": format.value, "rows": n, "state": state_, "college": college}))
    name = f"{kind.value}-{dt.date.today():%Y%m%d}.{format.value}"
    return Response(data, media_type=MEDIA[format.value], headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
