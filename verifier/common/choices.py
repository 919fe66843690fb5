"""Values the command line offers as choices and defaults, in a module that imports nothing.

`verifier --help` builds every sub-command's arguments without loading the store (SQLAlchemy), the photo
code (OpenCV, imagehash) or the models. The modules that own these values import them from here
(`verifier.store.models.PHOTO_KINDS`, `verifier.store.export.KINDS` and `FORMATS`,
`verifier.photos.roster.DEFAULT_KSH_PATTERN`, `verifier.photos.reconcile.FINE_MAX_DISTANCE` still work),
so each is defined once.
"""

from __future__ import annotations

# store.models: the photo kinds a student has (the `photos.kind` check constraint).
# id_card: the 身份证 chip photo (or the portrait cropped from a scan of the card), compared with the admission photo at intake.
PHOTO_KINDS = ("admission", "graduation", "id_card")
PHOTO_KIND_ZH = {"admission": "录取照片", "graduation": "毕业照片", "id_card": "身份证照片"}
# sweep: the kinds a duplicate sweep searches unless told otherwise (ID-card photos are 102x126: opt in with --kinds).
SWEEP_KINDS = ("admission", "graduation")
# store.export: what `verifier export` writes, and in which formats.
EXPORT_KINDS = ("cases", "comparisons", "students")
EXPORT_FORMATS = ("csv", "xlsx")
# photos.roster: a valid 考生号.
DEFAULT_KSH_PATTERN = r"^\d{14}$"
# photos.reconcile: the 256-bit pHash distance that confirms "same picture" (calibration in photos.reconcile).
FINE_MAX_DISTANCE = 24  # confirmation, of 256 bits
# calibrate.thresholds: the operating point (accept at this false-match rate, reject at this false-non-match rate).
DEFAULT_TARGET_FMR = 1e-5  # a false match lets an impersonator register a degree
DEFAULT_TARGET_FNMR = 1e-3  # a genuine graduate sent to identity re-review is a serious event for the student
# core.engines: the inference engine and precision a pipeline runs its recognizer with (VERIFIER_ENGINE, VERIFIER_PRECISION).
ENGINE_CHOICES = ("auto", "onnxruntime", "openvino")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "int8")
