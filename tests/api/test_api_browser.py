"""End to end in a real headless browser: Debian's chromium driven by Playwright against a uvicorn server on a random port."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from apihelp import ID_KEY, Env, make_keys, seed, serve

from verifier.common.settings import Settings
from verifier.store.audit import events_for
from verifier.store.connect import open_database
from verifier.store.models import ReviewCase
from verifier.store.schema import upgrade

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def live(tmp_path_factory, cache_dir, pipeline, api_cohort) -> Iterator[Env]:
    """A real uvicorn server on 127.0.0.1:<random port> over a seeded SQLite store."""
    from api.app import create_app

    home = tmp_path_factory.mktemp("browser-home")
    settings = Settings(home=home, cache_dir=cache_dir, id_key=ID_KEY)
    url = settings.resolve_db_url()
    upgrade(url)
    db = open_database(url)
    plain, scoped = make_keys(db)
    client, stop = serve(create_app(settings, url, pipeline=pipeline))
    env = Env(client, db, settings, plain, scoped)  # type: ignore[arg-type]
    env.cohort = api_cohort
    seed(env, api_cohort)
    yield env
    stop()
    db.dispose()


def _assert_chinese_renders(context, page, tmp_path: Path) -> None:
    """The heading is drawn with real CJK glyphs, not tofu, on a machine that may have no CJK font of its own.

    The browser reports which font drew the heading's glyphs; and a screenshot of the heading is compared with
    one of four private-use code points in the same style, which no font covers (tofu for certain).
    """
    import numpy as np
    from PIL import Image

    page.evaluate("document.fonts.ready.then(() => true)")
    cdp = context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    h1 = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "h1"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": h1})["fonts"]
    assert sum(f["glyphCount"] for f in fonts if "CJK" in f["familyName"] or "YaHei" in f["familyName"] or "Noto Sans SC" in f["familyName"]) == 4, fonts
    page.evaluate("""() => { const h = document.querySelector('h1'); const t = h.cloneNode(); t.id = 'tofu';
                     t.textContent = '\\ue000\\ue001\\ue002\\ue003'; h.after(t); }""")
    shots = {}
    for sel in ("h1:not(#tofu)", "#tofu"):
        path = tmp_path / f"{sel.strip('#:()').replace(':', '-')}.png"
        page.locator(sel).screenshot(path=str(path))
        shots[sel] = np.asarray(Image.open(path).convert("L"), dtype=np.int16)
    page.evaluate("document.getElementById('tofu').remove()")
    real, tofu = shots.values()
    h, w = min(real.shape[0], tofu.shape[0]), min(real.shape[1], tofu.shape[1])
    assert np.mean(np.abs(real[:h, :w] - tofu[:h, :w])) > 3.0, "the heading looks like tofu boxes"


def test_reviewer_signs_in_and_resolves_a_case(live: Env, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium chromium-driver)")
    from playwright.sync_api import expect, sync_playwright

    base = str(live.client.base_url).rstrip("/")
    with live.db.session() as s:
        open_before = [c.id for c in s.query(ReviewCase).filter(ReviewCase.state == "open").order_by(ReviewCase.id)]
    assert len(open_before) >= 2, "the seeded cohort must open at least two cases"
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS, locale="zh-CN", viewport={"width": 1280, "height": 1000}
        )
        page = context.new_page()
        page.goto(f"{base}/review")
        expect(page.locator("h1")).to_have_text("身份复核")
        _assert_chinese_renders(context, page, tmp_path)
        page.fill("#key", live.keys["admissions"])
        page.click("#signin")
        expect(page.locator("#status")).to_contain_text("reviewer")
        page.fill("#key", live.keys["reviewer"])
        page.click("#signin")
        rows = page.locator("tr.case-row")
        expect(rows.first).to_be_visible()
        assert rows.count() == len(open_before)
        expect(page.locator("#counts")).to_contain_text(str(len(open_before)))
        first = int(rows.first.get_attribute("data-id"))
        rows.first.click()
        expect(page.locator("#case-title")).to_contain_text(f"#{first}")
        for kind in ("admission", "graduation"):  # the compared pair, in the case's three-way view (no ID-card photo here)
            img = page.locator(f'#views figure[data-kind="{kind}"] img')
            expect(img).to_have_attribute("src", __import__("re").compile("^blob:"))
            page.wait_for_function(f"""document.querySelector('#views figure[data-kind="{kind}"] img').naturalWidth > 0""")
        expect(page.locator('#views figure[data-kind="id_card"] .placeholder')).to_be_visible()
        expect(page.locator("#score")).not_to_have_text("—")
        expect(page.locator("#students tbody td").nth(3)).to_contain_text("*")
        page.fill("#note", "与本人现场核对一致")
        page.locator("#note").blur()
        page.keyboard.press("1")
        expect(page.locator("#case-title")).not_to_contain_text(f"#{first}")
        second = open_before[1]
        expect(page.locator("#case-title")).to_contain_text(f"#{second}")
        page.click("#lang")
        expect(page.locator("h1")).to_have_text("Identity review")
        expect(page.locator("#btn-impersonation")).to_contain_text("Impersonation")
        page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
        page.click("#btn-newphoto")
        expect(page.locator("#status")).to_contain_text(f"#{second}")
        context.close()
    assert (tmp_path / "review.png").stat().st_size > 10_000
    with live.db.session() as s:
        done = s.get(ReviewCase, first)
        assert done.state == "resolved" and done.outcome == "same_person" and any("与本人现场核对一致" in n.text for n in done.notes)
        assert done.resolved_by is not None and done.resolved_by.startswith("key:") and done.resolved_by.endswith(":test-reviewer")
        actions = [(e.action, e.actor) for e in events_for(s, "case", first)]
        assert [a for a, _ in actions][-2:] == ["case.start_review", "case.resolve"]
        assert all(actor.endswith(":test-reviewer") for a, actor in actions if a != "case.open")
        assert all(live.keys["reviewer"] not in str(e.summary) and live.keys["reviewer"] not in e.actor for e in events_for(s, "case", first))
        needs = s.get(ReviewCase, second)
        assert needs.outcome == "photo_replaced"
        assert s.query(ReviewCase).filter(ReviewCase.case_type == "photo_correction", ReviewCase.student_id == needs.student_id).count() == 1
