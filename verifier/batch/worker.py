"""Worker side of the batch: check, detect, align and embed the photos of a chunk of students.

Runs in worker processes (one single-threaded pipeline each); receives
bytes, returns plain data. Embeddings of the whole chunk go through the
recognizer in one batched call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from verifier.core.align import align_face
from verifier.photos.checks import assess_bytes
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
    """What a worker found: check outcome, face size, and the embedding (None when not comparable)."""

    status: str
    codes: list[str]
    width: int | None
    height: int | None
    embedding: np.ndarray | None = None
    reasons: list[dict] = field(default_factory=list)


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
        a = assess_bytes(job.data, job.name, job.name, profiles[job.kind], pipeline)
        reasons = list(a.result.reasons)
        crop = None
        if a.pixels is not None and not PhotoFindings(job.kind, tuple(r.code for r in reasons)).blocking:
            face, why = pipeline.face_policy.choose(a.faces)
            if why is not None:
                reasons.append(why)
            elif face is not None and face.inter_eye < MIN_COMPARABLE_INTER_EYE:
                reasons.append(reason("COMPARE_FACE_TOO_SMALL", round(face.inter_eye, 1), MIN_COMPARABLE_INTER_EYE))
            elif face is not None:
                crop = align_face(a.pixels, face.landmarks, pipeline.embedder.size)
        status = "fail" if any(r.severity is Severity.FAIL for r in reasons) else a.result.status
        m = a.result.metrics
        work = PhotoWork(status, [r.code for r in reasons], m.get("width"), m.get("height"), None, [r.to_dict() for r in reasons])
        partial.append((work, crop))
    vectors = iter(pipeline.embedder.embed([c for _, c in partial if c is not None]))
    return [
        PhotoWork(w.status, w.codes, w.width, w.height, next(vectors) if crop is not None else None, w.reasons)
        for w, crop in partial
    ]


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
