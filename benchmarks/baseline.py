"""The project as it was before issue 20 (commit f9b2b2e), installed editable in a venv of its own, for same-run ratios.

    .venv/bin/python benchmarks/baseline.py            # build (or reuse) it and print its interpreter

It lives in `.bench-cache/` at the repository root (git-ignored): `baseline-src/` is `git archive f9b2b2e`,
`baseline-venv/` a venv without pip whose site-packages also lists this venv's site-packages (a `.pth` line), so
the baseline runs on the same onnxruntime, numpy and OpenCV builds as the current code and nothing is downloaded;
the project itself is installed editable (`pip install -e --no-deps`: that commit's wheel lacks two subpackages).
`env()` gives it its own model cache (`VERIFIER_CACHE_DIR`, which that commit's settings read) so the two versions
never share repaired models. Building is idempotent: a finished venv (marker file) is reused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMIT = "f9b2b2e"
CACHE = Path(os.environ.get("BENCH_CACHE", REPO / ".bench-cache"))
SRC = CACHE / "baseline-src"
VENV = CACHE / "baseline-venv"
MODELS = CACHE / "baseline-models"
MARKER = VENV / f".built-{COMMIT}"


def python() -> Path:
    """The baseline venv's interpreter (built on first use)."""
    if not MARKER.exists():
        build()
    return VENV / "bin" / "python"


def build() -> None:
    """Extract the commit, make the venv over this environment's packages, install the project editable."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if not (SRC / "pyproject.toml").exists():
        SRC.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", COMMIT], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(SRC)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(VENV)], check=True)
    site = Path(subprocess.run([str(VENV / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz_shared_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-e", str(SRC)], check=True, cwd=str(CACHE), capture_output=True)
    check = subprocess.run([str(VENV / "bin" / "python"), "-c", "import verifier, verifier.batch, verifier.calibrate; print(verifier.__file__)"],
                           check=True, capture_output=True, text=True, cwd=str(CACHE)).stdout.strip()
    if not check.startswith(str(SRC)):
        raise SystemExit(f"baseline venv imports verifier from {check}, not {SRC}")
    MARKER.write_text(COMMIT + "\n")


def env(home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a baseline command: its own home and model cache, and no path into the current checkout."""
    e = {k: v for k, v in (base or os.environ).items() if k != "PYTHONPATH"}
    e.update(VERIFIER_HOME=str(home), VERIFIER_CACHE_DIR=str(MODELS))
    return e


def command(*args: str) -> list[str]:
    """argv running the baseline's `verifier` (as its console script would)."""
    return [str(python()), "-m", "verifier", *args]


if __name__ == "__main__":
    print(python())
