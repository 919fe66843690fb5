"""Photos with history: a new picture becomes current, the old one stays linked (replaces / replaced_by)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from verifier.common.reasons import VerifierError
from verifier.store import audit
from verifier.store.models import CHECK_STATUSES, PHOTO_KINDS, Photo, Student
from verifier.store.photostore import PhotoStore, StoredFile, sha256_hex

ADD_ATTEMPTS = 5


def _check_kind(kind: str) -> None:
    if kind not in PHOTO_KINDS:
        raise VerifierError("STORE_PHOTO_KIND_INVALID", detail=repr(kind))


def current_photo(session: Session, student_id: int, kind: str, *, lock: bool = False) -> Photo | None:
    """The current photo of a student and kind, or None."""
    _check_kind(kind)
    q = select(Photo).where(Photo.student_id == student_id, Photo.kind == kind, Photo.is_current.is_(True))
    if lock:
        q = q.with_for_update()
    return session.scalar(q)


def add_photo(
    session: Session,
    store: PhotoStore,
    student: Student,
    kind: str,
    data: bytes | None,
    source: str = "",
    check_status: str = "unchecked",
    check_codes: Sequence[str] = (),
    width: int | None = None,
    height: int | None = None,
    actor: str = "system",
    stored: StoredFile | None = None,
    origin_sha256: str | None = None,
) -> Photo:
    """Store a picture and make it the student's current photo of this kind; the same bytes again is a no-op.

    `stored` is the file PhotoStore.put_many already made durable for these bytes (so it is not re-read). The previous current photo is kept (a correction 勘误 never deletes) and linked both ways. Safe under
    concurrent writers: the partial unique index admits one current photo, and a loser re-reads and retries.
    `origin_sha256` names the file the bytes were cut from (an ID-card scan); with `data` None the row records
    only that this file came and its check result (a scan with no usable portrait: no pixel of it is kept).
    """
    _check_kind(kind)
    if check_status not in CHECK_STATUSES:
        raise ValueError(f"check_status must be one of {CHECK_STATUSES}")
    if data is None and origin_sha256 is None:
        raise ValueError("a photo row without bytes needs the digest of the file it stands for")
    sha = sha256_hex(data) if data is not None else str(origin_sha256)
    for attempt in range(ADD_ATTEMPTS):
        current = current_photo(session, student.id, kind, lock=True)
        if current is not None and current.sha256 == sha:
            return current
        if data is not None and (stored is None or stored.sha256 != sha):
            stored = store.put(data)
        try:
            with session.begin_nested():
                if current is not None:
                    current.is_current = False
                    session.flush()
                photo = Photo(
                    student_id=student.id,
                    kind=kind,
                    source=source[:500],
                    sha256=sha,
                    **({"origin_sha256": origin_sha256} if origin_sha256 is not None else {}),
                    byte_size=len(data) if data is not None else 0,
                    width=width,
                    height=height,
                    check_status=check_status,
                    check_codes=list(check_codes),
                    file_path=stored.rel_path if data is not None and stored is not None else None,
                    is_current=True,
                    replaces_id=current.id if current is not None else None,
                )
                session.add(photo)
                session.flush()
                if current is not None:
                    current.replaced_by_id = photo.id
                    session.flush()
        except IntegrityError:
            if attempt == ADD_ATTEMPTS - 1:
                raise
            session.expire_all()
            continue
        audit.record(
            session,
            actor,
            "photo.replace" if current is not None else "photo.add",
            "photo",
            photo.id,
            before={"photo_id": current.id, "sha256": current.sha256} if current is not None else None,
            after={"student_id": student.id, "kind": kind, "sha256": sha, "origin_sha256": origin_sha256, "check_status": check_status, "check_codes": list(check_codes)},
        )
        return photo
    raise AssertionError("unreachable")


def set_check_result(
    session: Session, photo: Photo, check_status: str, check_codes: Sequence[str], actor: str = "system"
) -> Photo:
    """Record a (re)check of a stored photo, audited with the previous result."""
    if check_status not in CHECK_STATUSES:
        raise ValueError(f"check_status must be one of {CHECK_STATUSES}")
    before = {"check_status": photo.check_status, "check_codes": list(photo.check_codes)}
    if before == {"check_status": check_status, "check_codes": list(check_codes)}:
        return photo
    photo.check_status, photo.check_codes = check_status, list(check_codes)
    session.flush()
    audit.record(session, actor, "photo.check", "photo", photo.id, before=before, after={"check_status": check_status, "check_codes": list(check_codes)})
    return photo


def history(session: Session, student_id: int, kind: str) -> list[Photo]:
    """Every photo of a student and kind, oldest first (the correction chain)."""
    _check_kind(kind)
    q = select(Photo).where(Photo.student_id == student_id, Photo.kind == kind).order_by(Photo.id)
    return list(session.scalars(q))


def read_photo(store: PhotoStore, photo: Photo) -> bytes:
    """The picture's bytes, verified; STORE_PHOTO_NOT_KEPT for a scan row that never had a file, STORE_PHOTO_PURGED once retention removed it."""
    if photo.file_path is None and photo.byte_size == 0 and photo.origin_sha256 is not None:
        raise VerifierError("STORE_PHOTO_NOT_KEPT", detail=f"photo {photo.id}")
    if photo.file_path is None:
        raise VerifierError("STORE_PHOTO_PURGED", detail=f"photo {photo.id}")
    return store.read(photo.sha256)


def students_missing_photo(session: Session, kind: str, college: str | None = None) -> list[Student]:
    """Students with no current photo of this kind (backfill lists), optionally for one 学院."""
    _check_kind(kind)
    has = select(Photo.student_id).where(Photo.kind == kind, Photo.is_current.is_(True))
    q = select(Student).where(Student.id.not_in(has)).order_by(Student.ksh)
    if college:
        q = q.where(Student.college == college)
    return list(session.scalars(q))
