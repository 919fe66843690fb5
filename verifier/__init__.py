"""verifier: face-comparison identity verification for student-records offices.

The public Python API, importable from here (each name is imported when first used, so `import verifier`
and the command line stay quick):

    from verifier import Pipeline, load_profile, check_photo
    pipeline = Pipeline.load()                      # default pack, models from the installed wheel
    result = pipeline.compare("adm.jpg", "grad.jpg")  # Comparison: score, decision, thresholds, reasons
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Pipeline": "verifier.core.pipeline",
    "FacePolicy": "verifier.core.pipeline",
    "Face": "verifier.core.results",
    "FaceAnalysis": "verifier.core.results",
    "Comparison": "verifier.core.results",
    "Decision": "verifier.core.results",
    "Thresholds": "verifier.core.results",
    "Pack": "verifier.core.packs",
    "load_pack": "verifier.core.packs",
    "list_packs": "verifier.core.packs",
    "verify_pack": "verifier.core.packs",
    "analyze_files": "verifier.core.workers",
    "Profile": "verifier.photos.profiles",
    "load_profile": "verifier.photos.profiles",
    "CheckResult": "verifier.photos.checks",
    "check_photo": "verifier.photos.checks",
    "check_paths": "verifier.photos.checks",
    "fix_folder": "verifier.photos.fixer",
    "load_roster": "verifier.photos.roster",
    "BatchOptions": "verifier.batch.runner",
    "BatchRunner": "verifier.batch.runner",
    "Sweep": "verifier.sweep.runner",
    "SweepOptions": "verifier.sweep.runner",
    "open_database": "verifier.store.connect",
    "Settings": "verifier.common.settings",
    "Reason": "verifier.common.reasons",
    "VerifierError": "verifier.common.reasons",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'verifier' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
