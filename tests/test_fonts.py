"""Chinese renders in the project's pictures: the bundled Noto Sans SC font is found and used by matplotlib."""

from __future__ import annotations

import io
import warnings

import numpy as np

from verifier.common.fonts import FONT_FAMILY, cjk_font_path, use_cjk_font_in_matplotlib

TITLE = "录取照片与毕业照片比对 — 复核区间"


def _render(family: list[str]) -> tuple[np.ndarray, list[str]]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from PIL import Image

    with warnings.catch_warnings(record=True) as caught, matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": family}):
        warnings.simplefilter("always")
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.0, 0.5, TITLE, fontsize=14)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
    return np.asarray(Image.open(buf).convert("L")), [str(w.message) for w in caught]


def test_font_file_is_installed() -> None:
    path = cjk_font_path()
    assert path.is_file() and path.stat().st_size > 1_000_000
    assert path.read_bytes()[:4] in (b"OTTO", b"\x00\x01\x00\x00")


def test_chinese_title_renders_without_missing_glyphs() -> None:
    assert use_cjk_font_in_matplotlib() == FONT_FAMILY
    ours, warned = _render([FONT_FAMILY, "DejaVu Sans"])
    assert not [w for w in warned if "missing from font" in w or "Glyph" in w], warned
    tofu, warned_tofu = _render(["DejaVu Sans"])  # a font known to lack CJK: the same string as boxes
    assert any("missing from font" in w for w in warned_tofu), "the reference font unexpectedly has CJK glyphs"
    assert np.mean(np.abs(ours.astype(int) - tofu.astype(int))) > 2.0


def test_calibration_plots_use_the_font() -> None:
    from matplotlib import rcParams

    import verifier.calibrate.plots  # noqa: F401  (configures matplotlib on import)

    assert rcParams["font.sans-serif"][0] == FONT_FAMILY
