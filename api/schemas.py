"""Request and response models of the HTTP API (the OpenAPI document is generated from these)."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field


class ProfileName(str, Enum):
    """Built-in photo specification profiles."""

    admission = "admission"
    graduation = "graduation"
    id_card = "id_card"


class PhotoKind(str, Enum):
    """Which photo of a student: 录取照片, 毕业照片 or 身份证照片 (the ID-card chip photo, or the portrait cut from a card scan)."""

    admission = "admission"
    graduation = "graduation"
    id_card = "id_card"


class CaseState(str, Enum):
    open = "open"
    in_review = "in_review"
    resolved = "resolved"


class CaseType(str, Enum):
    comparison_failed = "comparison_failed"
    comparison_review = "comparison_review"
    duplicate_face = "duplicate_face"
    photo_correction = "photo_correction"
    identity_check = "identity_check"
    intake_mismatch = "intake_mismatch"


class Outcome(str, Enum):
    """How a reviewer closes a case; needs_new_photo is stored as photo_replaced and opens a photo_correction case."""

    same_person = "same_person"
    impersonation = "impersonation"
    needs_new_photo = "needs_new_photo"
    photo_replaced = "photo_replaced"
    dismissed = "dismissed"


class ExportKind(str, Enum):
    cases = "cases"
    comparisons = "comparisons"
    students = "students"


class ExportFormat(str, Enum):
    csv = "csv"
    xlsx = "xlsx"


class Role(str, Enum):
    admissions = "admissions"
    academic_affairs = "academic_affairs"
    reviewer = "reviewer"
    admin = "admin"


class ReasonOut(BaseModel):
    """One reason: stable code, severity, messages in Chinese and English, what was measured and the limit."""

    code: str
    severity: str = "fail"
    message_zh: str
    message_en: str
    measured: Any = None
    limit: Any = None


class CheckOut(BaseModel):
    """The verdict of a photo check (spec + quality)."""

    file: str
    ksh: str | None
    profile: str
    status: str = Field(description="pass | warn | fail")
    reasons: list[ReasonOut]
    metrics: dict[str, Any]


class CompareOut(BaseModel):
    """Two uploaded photos compared under the pack's thresholds."""

    score: float | None
    decision: str = Field(description="match | review | mismatch")
    thresholds: dict[str, float]
    pack: str
    a: dict[str, Any]
    b: dict[str, Any]
    reason: ReasonOut | None = None


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


class ResolveIn(BaseModel):
    outcome: Outcome
    note: str = Field(default="", max_length=2000)


class MemberOutcome(str, Enum):
    """A verdict on one member of a group case: the same person as the other confirmed members, or nobody else in the group."""

    confirmed = "confirmed"
    dismissed = "dismissed"


class MemberVerdictIn(BaseModel):
    member_id: int = Field(ge=1, le=2**31 - 1)
    outcome: MemberOutcome


class MembersIn(BaseModel):
    """Verdicts on members of a group case; pairs_seen (the number of pairs the reviewer was shown) refuses a stale page."""

    verdicts: list[MemberVerdictIn] = Field(min_length=1, max_length=1000)
    note: str = Field(default="", max_length=2000)
    pairs_seen: int | None = Field(default=None, ge=0, le=10_000_000)


class BatchJobIn(BaseModel):
    """Files on the server, relative to its permitted folder (VERIFIER_API_FILES_ROOT, default <home>/incoming)."""

    roster: str = Field(min_length=1, max_length=500, description="roster CSV/XLSX, relative path")
    admission_dir: str = Field(min_length=1, max_length=500)
    graduation_dir: str = Field(min_length=1, max_length=500)
    graduation_key: str = Field(default="ksh", pattern="^(ksh|student_no)$")


class IntakeJobIn(BaseModel):
    """The intake check's files on the server, relative to its permitted folder (as for the batch)."""

    roster: str = Field(min_length=1, max_length=500, description="roster CSV/XLSX, relative path")
    admission_dir: str = Field(min_length=1, max_length=500)
    id_card_dir: str = Field(min_length=1, max_length=500, description="ID-card photos (chip exports or scans of the card's front)")


class SweepJobIn(BaseModel):
    """Parameters of a duplicate sweep: incremental by default, `full` searches every current photo against all."""

    full: bool = False
    note: str = Field(default="", max_length=200)


class KeyIn(BaseModel):
    role: Role
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(default_factory=list, max_length=50, description="学院 names (学习中心:<name> for a 学习中心); empty = all")
    expires: dt.date | None = None


class KeyOut(BaseModel):
    id: int
    name: str
    role: str
    scopes: list[str]
    state: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    prefix: str


class KeyCreated(KeyOut):
    key: str = Field(description="the secret, shown this once")


class MeOut(BaseModel):
    key_id: int
    name: str
    role: str
    scopes: list[str]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    database: bool
    models: bool
    pack: str | None


class CollegeListOut(BaseModel):
    """One of a 学院's lists: kind, Chinese title, Chinese headers, rows (身份证号 masked)."""

    kind: str
    title_zh: str
    headers: list[str]
    rows: list[list[str | int | float | None]]


class CollegeListsOut(BaseModel):
    """A 学院's five lists (missing photo, failing photo, in review, impersonation, not compared)."""

    college: str
    pack: str
    lists: list[CollegeListOut]
