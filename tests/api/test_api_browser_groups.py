"""The reviewer page on a group case, in a real headless browser against uvicorn on loopback: every member with photo
and scores, verdicts member by member, names escaped; a scoped reviewer's queue does not offer the cross-学院 group."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from groupshelp import GROUP, GroupEnv, load_sources, open_group_env
from test_api_browser import ARGS, CHROMIUM

from verifier.store.audit import events_for
from verifier.store.members import members_of
from verifier.store.models import ReviewCase, Student

XSS_NAME = '<img src=x onerror="window.__xss=1">王四'


@pytest.fixture(scope="module")
def genv(tmp_path_factory, cache_dir, pipeline, single_faces) -> Iterator[GroupEnv]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium chromium-driver)")
    env = open_group_env(tmp_path_factory.mktemp("browser-groups"), cache_dir, pipeline, load_sources(pipeline, single_faces))

    def rename(s) -> None:
        s.get(Student, env.ids[GROUP[3]]).name = XSS_NAME

    env.db.transaction(rename)
    yield env
    env.stop()
    env.db.dispose()


def test_page_shows_every_member_and_decides_them_one_by_one(genv: GroupEnv, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = str(genv.client.base_url).rstrip("/")
    api = genv.client.get(f"/api/v1/cases/{genv.group_case}", headers=genv.h("reviewer")).json()
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS, locale="zh-CN", viewport={"width": 1280, "height": 1400}
        )
        page = context.new_page()
        page.goto(f"{base}/review")
        page.fill("#key", genv.scoped["reviewer"])
        page.click("#signin")
        expect(page.locator(f'tr.case-row[data-id="{genv.pair_case}"]')).to_be_visible()
        assert page.locator(f'tr.case-row[data-id="{genv.group_case}"]').count() == 0
        page.click("#signout")

        page.fill("#key", genv.keys["reviewer"])
        page.click("#signin")
        page.locator(f'tr.case-row[data-id="{genv.group_case}"]').click()
        expect(page.locator("#case-title")).to_contain_text(f"#{genv.group_case}")
        cards = page.locator("#member-cards figure.member")
        expect(cards).to_have_count(4)
        for i in range(4):
            expect(cards.nth(i).locator("img.member-photo")).to_have_attribute("src", re.compile("^blob:"))
            deadline = time.monotonic() + 30
            while cards.nth(i).locator("img.member-photo").evaluate("img => img.naturalWidth") == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert cards.nth(i).locator("img.member-photo").evaluate("img => img.naturalWidth") > 0
        for i, ksh in enumerate(GROUP):
            expect(cards.nth(i)).to_contain_text(ksh)
        expect(cards.nth(3)).to_contain_text("法学院")
        expect(cards.nth(3).locator(".member-name")).to_have_text(f"4. {XSS_NAME}")
        assert page.evaluate("window.__xss === undefined") and page.locator("#member-cards img:not(.member-photo)").count() == 0
        rows = page.locator("#matrix tbody tr")
        expect(rows).to_have_count(4)
        for i in range(4):
            scores = rows.nth(i).locator("td.score").all_inner_texts()
            assert scores == ["—" if v is None else f"{v:.3f}" for v in api["matrix"][i]]
            assert sum(bool(re.fullmatch(r"0\.\d{3}", s)) for s in scores) == 3
        assert page.locator("#pair-photos").is_hidden()
        page.screenshot(path=str(tmp_path / "group.png"), full_page=True)

        for i in range(3):
            cards.nth(i).locator("input.verdict-confirmed").check()
        page.click("#members-submit")
        expect(page.locator("#status")).to_contain_text(f"#{genv.group_case}")
        expect(cards.nth(0).locator(".member-outcome")).to_contain_text("同一人")
        expect(cards.nth(3).locator(".member-outcome")).to_contain_text("未定")
        with genv.db.session() as s:
            assert s.get(ReviewCase, genv.group_case).state == "in_review"
        cards.nth(3).locator("input.verdict-dismissed").check()
        page.click("#members-submit")
        expect(page.locator("#case-title")).not_to_contain_text(f"#{genv.group_case}")
        context.close()
    assert (tmp_path / "group.png").stat().st_size > 10_000
    with genv.db.session() as s:
        case = s.get(ReviewCase, genv.group_case)
        assert case.state == "resolved" and case.outcome == "same_person" and case.resolved_by.endswith(":test-reviewer")
        verdicts = {m.student_id: m.outcome for m in members_of(s, case.id)}
        assert verdicts == {**{genv.ids[k]: "confirmed" for k in GROUP[:3]}, genv.ids[GROUP[3]]: "dismissed"}
        assert sum(e.action == "case.member_decide" for e in events_for(s, "case", case.id)) == 4
