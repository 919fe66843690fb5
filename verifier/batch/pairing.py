"""What a batch compares: the admission photo against a probe photo, and what a flagged pair becomes.

Two pairings share one runner, store and report code: the graduation comparison (毕业照片 vs 录取照片, before
degree registration) and the intake check (身份证照片 vs 录取照片, before the admission photo is uploaded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from verifier.batch.decision import StudentDecision


@dataclass(frozen=True)
class Pairing:
    """The probe photo kind, the run kind it is stored under, the case type of each flagged decision, and its words."""

    probe: str  # photo kind compared with the admission photo
    run_kind: str
    cases: dict[StudentDecision, str] = field(default_factory=dict)
    probe_zh: str = ""
    probe_en: str = ""
    title_zh: str = ""
    title_en: str = ""
    progress: str = ""

    @property
    def probe_label(self) -> str:
        """The probe photo's column label, Chinese then English."""
        return f"{self.probe_zh} {self.probe_en}"


GRADUATION = Pairing(
    probe="graduation",
    run_kind="batch_compare",
    cases={StudentDecision.FAIL: "comparison_failed", StudentDecision.REVIEW: "comparison_review"},
    probe_zh="毕业照片",
    probe_en="graduation",
    title_zh="毕业照片与录取照片比对",
    title_en="Graduation vs admission photos",
    progress="比对 compare",
)

# Both a failed and a borderline intake pair go to one intake case: nobody is admitted on a photo in doubt.
INTAKE = Pairing(
    probe="id_card",
    run_kind="intake_check",
    cases={StudentDecision.FAIL: "intake_mismatch", StudentDecision.REVIEW: "intake_mismatch"},
    probe_zh="身份证照片",
    probe_en="ID card",
    title_zh="身份证照片与录取照片核验",
    title_en="ID-card vs admission photos",
    progress="入学核验 intake",
)

PAIRINGS = {p.probe: p for p in (GRADUATION, INTAKE)}
