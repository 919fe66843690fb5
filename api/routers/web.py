"""The reviewer page: one HTML shell (no data in it); the page's script calls the API with the reviewer's key."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from verifier.common.fonts import FONT_FILE, cjk_font_path

router = APIRouter(include_in_schema=False)
TEMPLATES = resources.files("api") / "templates"


@router.get("/")
def root() -> RedirectResponse:
    """The service's front door is the reviewer page."""
    return RedirectResponse("/review")


@router.get("/review", response_class=HTMLResponse)
def review_page() -> HTMLResponse:
    """The reviewer page (Chinese first, English switch)."""
    html = (TEMPLATES / "review.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"})


@router.get(f"/fonts/{FONT_FILE}")
def cjk_font() -> FileResponse:
    """The page's Chinese web font, for browsers on machines without one (public font data, cached for a year)."""
    return FileResponse(cjk_font_path(), media_type="font/otf", headers={"Cache-Control": "public, max-age=31536000, immutable"})
