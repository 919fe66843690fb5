"""The reviewer page's 学院名单 view in a real headless browser against uvicorn: a scoped reviewer sees its 学院's lists,
is refused another's like an unknown one, and downloads the XLSX."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from apihelp import SCOPE, Env
from openpyxl import load_workbook
from test_api_browser import ARGS, CHROMIUM, live  # noqa: F401 - `live` is the module's server fixture

from verifier.store.lists import LIST_KINDS, TITLES_ZH


def test_scoped_reviewer_reads_and_downloads_its_college_lists(live: Env, tmp_path: Path) -> None:  # noqa: F811
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium chromium-driver)")
    from playwright.sync_api import expect, sync_playwright

    live.new_case(live.inside[0])
    outside = live.client.get(f"/api/v1/students/{live.outside[0]}", headers=live.h("academic_affairs")).json()["college"]
    base = str(live.client.base_url).rstrip("/")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS, locale="zh-CN", accept_downloads=True
        )
        page = context.new_page()
        page.goto(f"{base}/review")
        page.fill("#key", live.scoped["reviewer"])
        page.click("#signin")
        expect(page.locator("#to-lists")).to_be_visible()
        page.click("#to-lists")
        expect(page.locator("#l-college")).to_have_value(SCOPE)
        sections = page.locator("#lists-tables section.college-list")
        expect(sections).to_have_count(len(LIST_KINDS))
        assert [sections.nth(i).get_attribute("data-kind") for i in range(len(LIST_KINDS))] == list(LIST_KINDS)
        review = page.locator("section.college-list[data-kind=in_review]")
        expect(review.locator("h3")).to_contain_text("复核中")
        expect(review.locator("tbody")).to_contain_text(live.inside[0])
        expect(review.locator("thead")).to_contain_text("考生号")
        text = page.locator("#lists-tables").inner_text()
        assert not any(k in text for k in live.outside)

        with page.expect_download() as info:
            page.click("#lists-xlsx")
        saved = tmp_path / "lists.xlsx"
        info.value.save_as(saved)
        assert load_workbook(saved, read_only=True).sheetnames == [TITLES_ZH[k] for k in LIST_KINDS]

        page.click("#lang")
        expect(review.locator("h3")).to_contain_text("In review")
        page.fill("#l-college", outside)
        page.click("#lists-show")
        expect(page.locator("#status")).to_contain_text("STORE_COLLEGE_UNKNOWN")
        expect(sections).to_have_count(0)
        page.click("#lists-back")
        expect(page.locator("#queue-view")).to_be_visible()
        context.close()
