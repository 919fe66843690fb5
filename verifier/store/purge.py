"""Retention: delete photo files and embeddings of students past retention, keep the rows and an audit record.

Selection: `graduated_before` takes students with status graduated and graduated_on earlier than the
date; `intake` takes students of one 入学批次; both given, a student must match both. Photo rows stay
(SHA-256, size, check result, history) with file_path cleared and purged_at set; comparisons and cases stay.
A file shared with a photo that is not being purged (same picture, content-addressed) is kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from verifier.common.reasons import VerifierError
from verifier.store import audit, runs
from verifier.store.db import Database
from verifier.store.models import Embedding, Photo, Student, utcnow
from verifier.store.photostore import PhotoStore


@dataclass(frozen=True)
class PurgeItem:
    """One student's share of a purge."""

    ksh: str
    college: str
    intake: str
    graduated_on: dt.date | None
    photos: int
    embeddings: int


@dataclass
class PurgeReport:
    """What a purge removed (or, in a dry run, would remove)."""

    dry_run: bool
    criteria: dict[str, str | None]
    items: list[PurgeItem] = field(default_factory=list)
    photos: int = 0
    embeddings: int = 0
    files_deleted: int = 0
    files_kept_shared: int = 0
    run_id: int | None = None
    shas: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Numbers only, for the audit record and logs."""
        return {
            "students": len(self.items),
            "photos": self.photos,
            "embeddings": self.embeddings,
            "files_deleted": self.files_deleted,
            "files_kept_shared": self.files_kept_shared,
        }


def _students(session: Session, graduated_before: dt.date | None, intake: str | None) -> list[Student]:
    if graduated_before is None and not intake:
        raise VerifierError("STORE_PURGE_NO_CRITERIA")
    q = select(Student).order_by(Student.ksh)
    if graduated_before is not None:
        q = q.where(Student.status == "graduated", Student.graduated_on < graduated_before)
    if intake:
        q = q.where(Student.intake == intake)
    return list(session.scalars(q))


def plan_and_apply(
    session: Session, graduated_before: dt.date | None = None, intake: str | None = None, dry_run: bool = True, actor: str = "system"
) -> PurgeReport:
    """Find what retention removes; unless dry_run, clear file references, delete embeddings, audit (files go after commit)."""
    report = PurgeReport(dry_run, {"graduated_before": graduated_before.isoformat() if graduated_before else None, "intake": intake})
    students = _students(session, graduated_before, intake)
    shas: set[str] = set()
    photo_ids: list[int] = []
    for st in students:
        photos = list(session.scalars(select(Photo).where(Photo.student_id == st.id, Photo.file_path.is_not(None))))
        ids = [p.id for p in photos]
        n_emb = session.scalar(select(func.count()).select_from(Embedding).where(Embedding.photo_id.in_(ids))) if ids else 0
        if not ids and not n_emb:
            continue
        report.items.append(PurgeItem(st.ksh, st.college, st.intake, st.graduated_on, len(ids), int(n_emb or 0)))
        report.photos += len(ids)
        report.embeddings += int(n_emb or 0)
        photo_ids.extend(ids)
        shas.update(p.sha256 for p in photos)
    report.shas = sorted(shas)
    if dry_run or not photo_ids:
        if not dry_run:
            report.run_id = _audit_run(session, report, actor)
        return report
    now = utcnow()
    for start in range(0, len(photo_ids), 500):
        chunk = photo_ids[start : start + 500]
        session.execute(delete(Embedding).where(Embedding.photo_id.in_(chunk)))
        for p in session.scalars(select(Photo).where(Photo.id.in_(chunk)).with_for_update()):
            p.file_path, p.purged_at = None, now
        session.flush()
    report.run_id = _audit_run(session, report, actor)
    return report


def _audit_run(session: Session, report: PurgeReport, actor: str) -> int:
    run = runs.start_run(session, "purge", report.criteria, actor)
    runs.finish_run(session, run.id, "completed", report.counts())
    audit.record(session, actor, "purge", "run", run.id, after=report.counts(), criteria=report.criteria)
    return run.id


def remove_unreferenced_files(session: Session, store: PhotoStore, shas: list[str]) -> tuple[int, int]:
    """Delete stored files no live photo row points at any more; returns (deleted, kept because shared)."""
    deleted = kept = 0
    for start in range(0, len(shas), 500):
        chunk = shas[start : start + 500]
        live = set(session.scalars(select(Photo.sha256).where(Photo.sha256.in_(chunk), Photo.file_path.is_not(None))))
        for sha in chunk:
            if sha in live:
                kept += 1
            elif store.delete(sha):
                deleted += 1
    return deleted, kept


def run_purge(
    db: Database, store: PhotoStore, graduated_before: dt.date | None = None, intake: str | None = None, dry_run: bool = True, actor: str = "system"
) -> PurgeReport:
    """The whole purge: database changes in one retried transaction, then the files nobody references any more."""
    report = db.transaction(lambda s: plan_and_apply(s, graduated_before, intake, dry_run, actor))
    if not dry_run:
        with db.session() as s:
            report.files_deleted, report.files_kept_shared = remove_unreferenced_files(s, store, report.shas)
        run_id = report.run_id
        if run_id is not None:

            def _record_files(s: Session) -> None:
                runs.update_counts(s, run_id, report.counts())
                audit.record(s, actor, "purge.files", "run", run_id, after=report.counts())

            db.transaction(_record_files)
    return report
