"""The CJK font every picture the program makes uses: Noto Sans SC (SIL OFL 1.1) from the `pylopdf-fonts-zh-cn` wheel.

Machines rarely carry a Chinese font (servers, CI), so the program brings one from PyPI instead of relying on
the system: matplotlib is pointed at the file explicitly, and the reviewer page can load it as a web font.
The file is located without importing the carrier package.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from verifier.common.reasons import VerifierError

FONT_PACKAGE = "pylopdf_fonts_zh_cn"
FONT_FILE = "NotoSansSC-Regular.otf"
FONT_FAMILY = "Noto Sans SC"
FONT_LICENCE = "SIL Open Font License 1.1 (Noto CJK, Google/Adobe)"


@cache
def cjk_font_path() -> Path:
    """The installed Noto Sans SC file, or FONT_CJK_MISSING naming the package to install."""
    spec = importlib.util.find_spec(FONT_PACKAGE)
    path = Path(spec.origin).parent / FONT_FILE if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise VerifierError("FONT_CJK_MISSING", detail=f"pip install pylopdf-fonts-zh-cn ({FONT_FILE})")
    return path


def use_cjk_font_in_matplotlib() -> str:
    """Register the font with matplotlib and make it the first sans-serif family (DejaVu Sans as fallback)."""
    from matplotlib import font_manager, rcParams

    path = str(cjk_font_path())
    if path not in {f.fname for f in font_manager.fontManager.ttflist}:
        font_manager.fontManager.addfont(path)
    rcParams["font.family"] = "sans-serif"
    rcParams["font.sans-serif"] = [FONT_FAMILY, "DejaVu Sans"]
    return FONT_FAMILY
