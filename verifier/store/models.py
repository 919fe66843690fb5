"""SQLAlchemy 2 models of the store; the Alembic migrations are the schema and `alembic check` keeps the two equal.

Decisions recorded here because the issue is silent:
- "Graduated" means `students.status = 'graduated'` with `students.graduated_on` set; retention
  (`verifier purge --graduated-before DATE`) selects on `graduated_on`.
- A photo row outlives its file: purge clears `file_path`, stamps `purged_at`, and deletes the
  photo's embeddings; the row, its SHA-256 and its comparisons stay for the record.
- Exactly one current photo per student and kind, and one open (open or in_review) case per
  case type and subject, are enforced by partial unique indexes on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from verifier.common.choices import PHOTO_KINDS

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STUDENT_STATUSES = ("enrolled", "graduated", "withdrawn")
REGISTRATIONS = ("pending", "cleared", "blocked")
REGISTRATION_ZH = {"pending": "待定", "cleared": "准予注册", "blocked": "不予注册"}
# What a resolved case's outcome makes of its student's registration (学位注册); dismissed leaves it as it was.
OUTCOME_REGISTRATION = {"same_person": "cleared", "photo_replaced": "cleared", "impersonation": "blocked"}
# An intake case (ID card vs admission photo) says nothing about the degree, except that an impersonator gets none.
INTAKE_OUTCOME_REGISTRATION = {"impersonation": "blocked"}
CHECK_STATUSES = ("unchecked", "pass", "warn", "fail")
DECISIONS = ("match", "review", "mismatch", "unusable")
CASE_TYPES = ("comparison_failed", "comparison_review", "duplicate_face", "photo_correction", "identity_check", "intake_mismatch")
CASE_STATES = ("open", "in_review", "resolved")
CASE_OUTCOMES = ("same_person", "impersonation", "photo_replaced", "dismissed")
SUBJECT_TYPES = ("student", "photo", "comparison", "duplicate")
MEMBER_OUTCOMES = ("confirmed", "dismissed")
RUN_STATUSES = ("running", "completed", "failed", "interrupted")


def utcnow() -> dt.datetime:
    """Timezone-aware now in UTC; every stored time is UTC."""
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class Base(DeclarativeBase):
    """Declarative base with a naming convention so constraint names are the same on every database."""

    metadata = MetaData(naming_convention=NAMING)


class Student(Base):
    """One student (学生) keyed by 考生号; the 身份证号 only as an HMAC and a masked display form."""

    __tablename__ = "students"
    __table_args__ = (
        CheckConstraint(_in("status", STUDENT_STATUSES), name="status"),
        CheckConstraint("status <> 'graduated' OR graduated_on IS NOT NULL", name="graduated_has_date"),
        CheckConstraint(_in("registration", REGISTRATIONS), name="registration"),
    )
    # registration comes from the server default and is read back lazily, so an INSERT names no column a
    # store being upgraded past 0006 does not have yet.
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ksh: Mapped[str] = mapped_column(String(32), unique=True)
    student_no: Mapped[str] = mapped_column(String(32), default="", index=True)
    name: Mapped[str] = mapped_column(String(100))
    id_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    id_masked: Mapped[str] = mapped_column(String(32), default="")
    college: Mapped[str] = mapped_column(String(200), default="", index=True)
    centre: Mapped[str] = mapped_column(String(200), default="")
    intake: Mapped[str] = mapped_column(String(32), default="", index=True)
    status: Mapped[str] = mapped_column(String(16), default="enrolled")
    graduated_on: Mapped[dt.date | None] = mapped_column(Date, index=True)
    registration: Mapped[str] = mapped_column(String(16), server_default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    photos: Mapped[list[Photo]] = relationship(back_populates="student", foreign_keys="Photo.student_id")


class Photo(Base):
    """One picture of a student (admission, graduation or ID card) with its check result and its place in the correction chain."""

    __tablename__ = "photos"
    __table_args__ = (
        CheckConstraint(_in("kind", PHOTO_KINDS), name="kind"),
        CheckConstraint(_in("check_status", CHECK_STATUSES), name="check_status"),
        Index(
            "uq_photos_one_current",
            "student_id",
            "kind",
            unique=True,
            sqlite_where=text("is_current"),
            postgresql_where=text("is_current"),
        ),
    )

    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(500), default="")
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # The digest of the file this photo was cut from (an ID-card scan), which is never stored itself. Deferred and
    # named in an INSERT only when set, so the ORM still works on a store being upgraded from before 0010.
    origin_sha256: Mapped[str | None] = mapped_column(String(64), deferred=True, server_default=text("NULL"))
    byte_size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    check_status: Mapped[str] = mapped_column(String(16), default="unchecked")
    check_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    file_path: Mapped[str | None] = mapped_column(String(200))
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id"), unique=True)
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    student: Mapped[Student] = relationship(back_populates="photos", foreign_keys=[student_id])


class Embedding(Base):
    """A face embedding of one photo under one model pack (float32 bytes); packs are never mixed."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("photo_id", "pack_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"))
    pack_id: Mapped[str] = mapped_column(String(64), index=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Run(Base):
    """One batch run or sweep: what it was asked to do, what it counted, how it ended."""

    __tablename__ = "runs"
    __table_args__ = (CheckConstraint(_in("status", RUN_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    actor: Mapped[str] = mapped_column(String(100), default="")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Comparison(Base):
    """A probe photo vs the admission photo under one pack; one row per (admission, probe, pack).

    The probe (`graduation_photo_id`) is the graduation photo for the graduation comparison and the ID-card
    photo for the intake check; its kind says which comparison a row is.
    """

    __tablename__ = "comparisons"
    __table_args__ = (
        UniqueConstraint("admission_photo_id", "graduation_photo_id", "pack_id"),
        CheckConstraint(_in("decision", DECISIONS), name="decision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id"), index=True)
    admission_photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"))
    graduation_photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"), index=True)
    pack_id: Mapped[str] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(16), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DuplicateCandidate(Base):
    """Two photos of two different students whose faces look alike (photo_a_id < photo_b_id)."""

    __tablename__ = "duplicate_candidates"
    __table_args__ = (
        UniqueConstraint("photo_a_id", "photo_b_id", "pack_id"),
        CheckConstraint("photo_a_id < photo_b_id", name="ordered"),
        CheckConstraint("student_a_id <> student_b_id", name="two_students"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_a_id: Mapped[int] = mapped_column(ForeignKey("photos.id"))
    photo_b_id: Mapped[int] = mapped_column(ForeignKey("photos.id"), index=True)
    student_a_id: Mapped[int] = mapped_column(ForeignKey("students.id"), index=True)
    student_b_id: Mapped[int] = mapped_column(ForeignKey("students.id"), index=True)
    pack_id: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    last_sweep_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReviewCase(Base):
    """A review case (复核案件): open → in_review → resolved with an outcome."""

    __tablename__ = "review_cases"
    __table_args__ = (
        CheckConstraint(_in("case_type", CASE_TYPES), name="case_type"),
        CheckConstraint(_in("state", CASE_STATES), name="state"),
        CheckConstraint(_in("subject_type", SUBJECT_TYPES), name="subject_type"),
        CheckConstraint("outcome IS NULL OR " + _in("outcome", CASE_OUTCOMES), name="outcome"),
        CheckConstraint("(state = 'resolved') = (outcome IS NOT NULL)", name="resolved_has_outcome"),
        Index(
            "uq_review_cases_one_open",
            "case_type",
            "subject_type",
            "subject_id",
            unique=True,
            sqlite_where=text("state <> 'resolved'"),
            postgresql_where=text("state <> 'resolved'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_type: Mapped[str] = mapped_column(String(32))
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[int] = mapped_column(Integer)
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    outcome: Mapped[str | None] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(100), index=True)
    opened_by: Mapped[str] = mapped_column(String(100), default="")
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    review_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    notes: Mapped[list[CaseNote]] = relationship(order_by="CaseNote.id", lazy="selectin", viewonly=True)


class CaseNote(Base):
    """One note on a case as its own row (author, time, text), so no text can pose as another reviewer's entry."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("review_cases.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    author: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)


class CaseMember(Base):
    """A student in a group (duplicate_face) case, the photo that put them there, and the reviewer's verdict on them.

    confirmed: the same person as the other confirmed members; dismissed: not the same person as any other member.
    A pair of the case counts as adjudicated only when both its students carry a verdict.
    """

    __tablename__ = "case_members"
    __table_args__ = (
        UniqueConstraint("case_id", "student_id"),
        CheckConstraint("outcome IS NULL OR " + _in("outcome", MEMBER_OUTCOMES), name="outcome"),
        CheckConstraint("(outcome IS NULL) = (decided_at IS NULL)", name="decided_has_time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("review_cases.id"))
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id"), index=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"))
    outcome: Mapped[str | None] = mapped_column(String(16))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CasePair(Base):
    """A duplicate candidate (photo pair) a group case covers; the scores live on the candidate."""

    __tablename__ = "case_pairs"
    __table_args__ = (UniqueConstraint("case_id", "candidate_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("review_cases.id"))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("duplicate_candidates.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEvent(Base):
    """Append-only audit log; database triggers reject UPDATE and DELETE, and the ORM refuses them too."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id"),)


API_ROLES = ("admissions", "academic_affairs", "reviewer", "admin")


class ApiKey(Base):
    """An HTTP API key: only a SHA-256 of its secret is stored; a role, optional 学院/学习中心 scopes, expiry, revocation."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(_in("role", API_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)  # keys are looked up by it (api.keys.authenticate)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
