"""A 学院's work lists as JSON (the reviewer page) and as an XLSX with a sheet per list, limited to the key's scope.

A scoped key asking for a 学院 outside its scope gets the same 404 as for a 学院 with no students
(STORE_COLLEGE_UNKNOWN), so scope never reveals which colleges exist; a 学习中心-scoped key sees its
centres' students of the 学院.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
import tempfile
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from fastapi.responses import Response
from sqlalchemy.orm import Session

from verifier.common.reasons import VerifierError
from verifier.store import audit, export, lists

from api.auth import ACADEMIC, ADMIN, ADMISSIONS, REVIEWER, require
from api.keys import Principal
from api.routers.exports import MEDIA
from api.schemas import CollegeListsOut
from api.state import AppState, get_state

router = APIRouter(prefix="/api/v1/lists", tags=["lists"])
COLLEGE = PathParam(min_length=1, max_length=200, description="学院 as on the roster")
READERS = require(ADMISSIONS, ACADEMIC, REVIEWER, ADMIN)


def _centres(who: Principal, college: str) -> frozenset[str] | None:
    """The 学习中心 filter a key implies for a 学院 (None: all its students); 404 when the key may see none of them."""
    if not who.scoped or college in who.colleges:
        return None
    if who.centres:
        return who.centres
    raise VerifierError("STORE_COLLEGE_UNKNOWN")


def _load(s: Session, who: Principal, college: str, pack: str) -> list[lists.NamedList]:
    centres = _centres(who, college)
    if not lists.has_college(s, college, centres):
        raise VerifierError("STORE_COLLEGE_UNKNOWN")
    return lists.college_lists(s, college, pack, centres)


@router.get("/{college}", response_model=CollegeListsOut)
def college_lists(college: str = COLLEGE, state: AppState = Depends(get_state), who: Principal = Depends(READERS)) -> CollegeListsOut:
    """The 学院's five lists; "not compared" counts comparisons under the service's model pack."""
    pack = state.settings.pack
    with state.database().session() as s:
        found = _load(s, who, college, pack)
    return CollegeListsOut.model_validate({"college": college, "pack": pack, "lists": [asdict(item) for item in found]})


@router.get("/{college}/xlsx", response_class=Response, responses={200: {"content": {MEDIA["xlsx"]: {}}}})
def college_lists_xlsx(college: str = COLLEGE, state: AppState = Depends(get_state), who: Principal = Depends(READERS)) -> Response:
    """The 学院's lists as one XLSX, a sheet per list with Chinese headers; the export is audited."""
    db = state.database()
    with tempfile.TemporaryDirectory(prefix="lists-") as tmp:
        out = Path(tmp) / "lists.xlsx"
        with db.session() as s:
            n = export.write_sheets(lists.sheets(_load(s, who, college, state.settings.pack)), out)
        data = out.read_bytes()
    db.transaction(lambda s: audit.record(s, who.actor, "export", "export", "lists", after={"format": "xlsx", "rows": n, "college": college}))
    name = f"lists-{dt.date.today():%Y%m%d}.xlsx"
    disposition = f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(college)}-{name}"
    return Response(data, media_type=MEDIA["xlsx"], headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})
