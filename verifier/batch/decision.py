"""Per-student identity decision, kept apart from photo specification problems.

Two questions are never mixed: *is the photo to specification* (a
compliance problem listed for correction) and *can the face be compared
reliably*. Only the second decides whether a student is compared at all;
poor quality can move a borderline mismatch to review, never to fail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from verifier.common.reasons import Reason, reason
from verifier.core.results import Decision, Thresholds
from verifier.core.score import decide

# Reason codes that mean the face cannot be compared at all.
UNCOMPARABLE_PREFIXES = ("FILE_", "IMAGE_", "CHECK_INTERNAL")
UNCOMPARABLE_CODES = {"FACE_NOT_FOUND", "FACE_MULTIPLE", "COMPARE_FACE_TOO_SMALL", "IDCARD_SCAN_NO_PORTRAIT", "IDCARD_SCAN_SEVERAL_FACES"}
# Quality findings that make a score less trustworthy (see verifier.score.decide).
QUALITY_AFFECTS_SCORE = {
    "QUALITY_BLURRY",
    "QUALITY_UNDEREXPOSED",
    "QUALITY_OVEREXPOSED",
    "QUALITY_POSE_YAW",
    "QUALITY_POSE_PITCH",
    "QUALITY_POSE_ROLL",
    "QUALITY_FACE_TOO_SMALL",
    "QUALITY_INTER_EYE_TOO_SMALL",
    "QUALITY_FACE_CUT_OFF",
    "QUALITY_FACE_LOW_CONFIDENCE",
    "QUALITY_NOT_COLOUR",
}
# Minimum inter-eye distance (px, original image) below which an embedding is not trusted:
# the 112x112 template puts the eyes 35 px apart, so this is a 3x upscale.
MIN_COMPARABLE_INTER_EYE = 12.0


class StudentDecision(str, Enum):
    """The batch runner's outcome for one student."""

    PASS = "pass"
    REVIEW = "review"
    FAIL = "fail"
    PHOTO_UNUSABLE = "photo_unusable"
    MISSING_PHOTO = "missing_photo"


DECISION_ZH = {
    StudentDecision.PASS: "通过",
    StudentDecision.REVIEW: "人工复核",
    StudentDecision.FAIL: "不通过（身份复核）",
    StudentDecision.PHOTO_UNUSABLE: "照片不可用",
    StudentDecision.MISSING_PHOTO: "缺少照片",
}
FLAGGED = (StudentDecision.REVIEW, StudentDecision.FAIL, StudentDecision.PHOTO_UNUSABLE, StudentDecision.MISSING_PHOTO)


@dataclass(frozen=True)
class PhotoFindings:
    """What the checks found on one photo, split by question."""

    kind: str  # "admission" | "graduation" | "id_card"
    codes: tuple[str, ...]  # every fail/warn code from the checks and the face choice

    @property
    def spec_codes(self) -> list[str]:
        return [c for c in self.codes if c.startswith("SPEC_")]

    @property
    def blocking(self) -> list[str]:
        return [c for c in self.codes if c in UNCOMPARABLE_CODES or c.startswith(UNCOMPARABLE_PREFIXES)]

    @property
    def quality_issues(self) -> list[str]:
        return [c for c in self.codes if c in QUALITY_AFFECTS_SCORE]


@dataclass(frozen=True)
class Outcome:
    """Decision, score and the reasons behind them."""

    decision: StudentDecision
    score: float | None
    reasons: list[Reason] = field(default_factory=list)


def comparability(findings: PhotoFindings) -> Reason | None:
    """Why a photo cannot be compared, or None when it can."""
    blocking = findings.blocking
    return reason(blocking[0]) if blocking else None


def decide_student(
    admission: PhotoFindings | None,
    graduation: PhotoFindings | None,
    score: float | None,
    thresholds: Thresholds,
    probe_kind: str = "graduation",
) -> Outcome:
    """The identity decision for one student: the admission photo against the probe (graduation or ID-card photo).

    `score` is the cosine of the two embeddings (None when not compared).
    A photo with a quality problem that moves scores never fails the pair;
    it passes only at the strict threshold and otherwise goes to review.
    """
    missing = [reason(f"BATCH_MISSING_{kind.upper()}") for kind, f in (("admission", admission), (probe_kind, graduation)) if f is None]
    if missing:
        return Outcome(StudentDecision.MISSING_PHOTO, None, missing)
    assert admission is not None and graduation is not None
    unusable = [r for r in (comparability(admission), comparability(graduation)) if r is not None]
    if unusable or score is None:
        return Outcome(StudentDecision.PHOTO_UNUSABLE, None, unusable)
    poor = sorted(set(admission.quality_issues) | set(graduation.quality_issues))
    verdict = decide(score, thresholds, quality_ok=not poor)
    if verdict is Decision.MATCH:
        return Outcome(StudentDecision.PASS, score, [])
    if poor:
        return Outcome(StudentDecision.REVIEW, score, [reason("COMPARE_LOW_QUALITY_REVIEW", round(score, 4)), *(reason(c) for c in poor)])
    if verdict is Decision.REVIEW:
        return Outcome(StudentDecision.REVIEW, score, [reason("COMPARE_REVIEW_BAND", round(score, 4), [thresholds.reject, thresholds.accept])])
    return Outcome(StudentDecision.FAIL, score, [reason("COMPARE_MISMATCH", round(score, 4), thresholds.reject)])


def spec_issues(findings: Iterable[PhotoFindings | None]) -> list[str]:
    """Specification codes of either photo, prefixed by which photo (for the photo_issues column)."""
    out = []
    for f in findings:
        if f is not None:
            out += [f"{f.kind}:{c}" for c in f.spec_codes]
    return out
