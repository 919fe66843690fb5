"""docs/REASONS.md equals the reason table, and every code the code base names is in the table."""

from __future__ import annotations

import re
from pathlib import Path

from verifier.common.reasons import REASONS, markdown_table

ROOT = Path(__file__).resolve().parent.parent
USES = re.compile(r"""(?:\breason|VerifierError)\(\s*f?["']([A-Z][A-Z0-9_]*)["']""")
F_USES = re.compile(r"""\breason\(\s*f["']([A-Z_]*)\{""")


def test_reasons_md_is_generated_from_the_table():
    doc = ROOT / "docs" / "REASONS.md"
    assert doc.read_text(encoding="utf-8") == markdown_table(), "regenerate: verifier reasons --markdown > docs/REASONS.md"


def test_every_code_used_is_in_the_table():
    missing = {}
    for path in sorted([*(ROOT / "verifier").rglob("*.py"), *(ROOT / "api").rglob("*.py")]):
        text = path.read_text(encoding="utf-8")
        for code in USES.findall(text):
            if code not in REASONS:
                missing.setdefault(code, path.name)
        for prefix in F_USES.findall(text):
            assert any(c.startswith(prefix) for c in REASONS), (prefix, path.name)
    assert missing == {}


def test_pose_codes_built_from_axis_names_exist():
    for axis in ("YAW", "PITCH", "ROLL"):
        assert f"QUALITY_POSE_{axis}" in REASONS
