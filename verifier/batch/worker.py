"""Worker side of the batch: check, detect, align and embed the photos of a chunk of students.

Runs in worker processes (one single-threaded pipeline each); receives
bytes, returns plain data. Embeddings of the whole chunk go through the
recognizer in one batched call.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import numpy as np

from verifier.core.align import align_face
from verifier.photos.checks import assess_bytes, status_of
from verifier.photos.idcard import IdCardInput, prepare_id_card
from verifier.photos.profiles import Profile
from verifier.common.reasons import Severity, reason
from verifier.batch.decision import MIN_COMPARABLE_INTER_EYE, PhotoFindings


@dataclass(frozen=True)
class PhotoJob:
    """One photo to process: which student and kind, where it came from, and its bytes."""

    ksh: str
    kind: str
    name: str
    data: bytes
    source: str = ""


@dataclass(frozen=True)
class PhotoWork:
    """What a worker found: check outcome, face size, and the embedding (None when not comparable).

    For an ID-card scan, `data` is what may be stored instead of the file's bytes: the portrait cut from it, or
    None when no portrait was found (then no pixel is stored); `origin_sha256` is the scan's digest.
    """

    status: str
    codes: list[str]
    width: int | None
    height: int | None
    embedding: np.ndarray | None = None
    reasons: list[dict] = field(default_factory=list)
    data: bytes | None = None
    origin_sha256: str | None = None
    replaced: bool = False  # True: store `data` (possibly None), not the job's bytes

    def stored_bytes(self, original: bytes) -> bytes | None:
        """The bytes to store for this photo (None: keep only the row, never the scan's pixels)."""
        return self.data if self.replaced else original


_STATE: dict = {}


def init_worker(pack_id: str | None, model_dir: str | None, profiles: dict[str, Profile], pipeline=None) -> None:
    """Build the pipeline and profiles for process_chunk; signals stay as the caller set them.

    This also runs in the caller's own process (threads, one worker), which may be a child such as an API
    job whose runner installed the drain-on-Ctrl-C handler: ignoring SIGINT here made cancel a no-op.
    Pool worker processes are silenced by common.parallel instead.
    """
    from verifier.core.workers import init_pipeline, worker_pipeline

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    init_pipeline(pack_id, model_dir, pipeline)
    _STATE.update(pipeline=worker_pipeline(), profiles=profiles)


def process_chunk(jobs: list[PhotoJob]) -> list[PhotoWork]:
    """Check every photo, choose its face, and embed all usable faces in one batch."""
    pipeline = _STATE["pipeline"]
    profiles: dict[str, Profile] = _STATE["profiles"]
    partial: list[tuple[PhotoWork, np.ndarray | None]] = []
    for job in jobs:
        card = prepare_id_card(job.data, pipeline) if job.kind == "id_card" else IdCardInput(job.data, None, None)
        if card.data is None:  # a card scan without a usable portrait: nothing of it is kept
            why = card.reason.to_dict() if card.reason else {}
            codes = [why["code"]] if why else []
            partial.append((PhotoWork("fail", codes, None, None, None, [why] if why else [], None, card.origin_sha256, True), None))
            continue
        a = assess_bytes(card.data, job.name, job.name, profiles[job.kind], pipeline)
        reasons = ([card.reason] if card.reason else []) + list(a.result.reasons)
        crop = None
        if a.pixels is not None and not PhotoFindings(job.kind, tuple(r.code for r in reasons)).blocking:
            face, why = pipeline.face_policy.choose(a.faces)
            if why is not None:
                reasons.append(why)
            elif face is not None and face.inter_eye < MIN_COMPARABLE_INTER_EYE:
                reasons.append(reason("COMPARE_FACE_TOO_SMALL", round(face.inter_eye, 1), MIN_COMPARABLE_INTER_EYE))
            elif face is not None:
                crop = align_face(a.pixels, face.landmarks, pipeline.embedder.size)
        status = status_of(reasons)
        m = a.result.metrics
        replaced = card.origin_sha256 is not None
        work = PhotoWork(
            status, [r.code for r in reasons], m.get("width"), m.get("height"), None, [r.to_dict() for r in reasons],
            card.data if replaced else None, card.origin_sha256, replaced,
        )
        partial.append((work, crop))
    vectors = iter(pipeline.embedder.embed([c for _, c in partial if c is not None]))
    return [dataclasses.replace(w, embedding=next(vectors)) if crop is not None else w for w, crop in partial]


@dataclass(frozen=True)
class StudentJob:
    """The photos of one student that need processing (none: only the comparison is missing)."""

    ksh: str
    photos: list[PhotoJob]


def process_students(chunk: list[StudentJob]) -> list[list[PhotoWork]]:
    """process_chunk over several students at once (one embedding batch), split back per student."""
    flat = process_chunk([p for job in chunk for p in job.photos])
    out, i = [], 0
    for job in chunk:
        out.append(flat[i : i + len(job.photos)])
        i += len(job.photos)
    return out
