"""The reviewer page's three-way view in headless Chromium: ID card, admission and graduation photos side by side.

A real uvicorn server over SQLite; the students' photos are face-set portraits uploaded through the API (the
ID-card photos are chip-size BMPs cut from them at test time).
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apihelp import ID_KEY, SCOPE, Env, make_keys, serve
from idcardhelp import chip_photo, encode, intake_case

from verifier.common.settings import Settings
from verifier.store.audit import events_for
from verifier.store.connect import open_database
from verifier.store.models import Photo
from verifier.store.schema import upgrade

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
LABELS = {"id_card": ("身份证照片", "ID-card photo"), "admission": ("录取照片", "Admission photo"), "graduation": ("毕业照片", "Graduation photo")}


def _upload(env: Env, ksh: str, kind: str, name: str, data: bytes) -> None:
    r = env.client.put(f"/api/v1/students/{ksh}/photos/{kind}", params={"keep_failing": "true"}, headers=env.h("admissions"), files={"file": (name, data, "application/octet-stream")})
    assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def live(tmp_path_factory, cache_dir, pipeline, api_cohort) -> Iterator[tuple[Env, dict[str, int]]]:
    """A live server; in SCOPE one student with all three photos and one without a graduation photo, and one of another
    学院 with all three; an intake case for each (name → case id)."""
    from api.app import create_app

    home = tmp_path_factory.mktemp("browser-idcard-home")
    settings = Settings(home=home, cache_dir=cache_dir, id_key=ID_KEY)
    url = settings.resolve_db_url()
    upgrade(url)
    db = open_database(url)
    plain, scoped = make_keys(db)
    client, stop = serve(create_app(settings, url, pipeline=pipeline))
    env = Env(client, db, settings, plain, scoped)  # type: ignore[arg-type]
    env.cohort = api_cohort
    r = client.post("/api/v1/rosters", headers=env.h("admissions"), files={"file": ("roster.csv", api_cohort.roster.read_bytes(), "text/csv")})
    assert r.status_code == 200, r.text
    with open(api_cohort.roster, encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            (env.inside if row["学院"] == SCOPE else env.outside).append(row["考生号"])
    assert len(env.inside) >= 2 and env.outside
    people = {"full": env.inside[0], "no_graduation": env.inside[1], "other_college": env.outside[0]}
    cases = {}
    for who, ksh in people.items():
        admission = Path(api_cohort.admission_dir) / f"{ksh}.jpg"
        _upload(env, ksh, "admission", admission.name, admission.read_bytes())
        _upload(env, ksh, "id_card", f"{ksh}.bmp", encode(chip_photo(pipeline, admission), ".bmp"))
        if who != "no_graduation":
            graduation = Path(api_cohort.graduation_dir) / f"{ksh}.jpg"
            _upload(env, ksh, "graduation", graduation.name, graduation.read_bytes())
        cases[who] = intake_case(db, pipeline.pack.id, ksh)
    yield env, cases
    stop()
    db.dispose()


def _open(page: Any, case_id: int) -> None:
    """Filter the queue to intake cases and open one by its row."""
    page.select_option("#f-type", "intake_mismatch")
    page.click("#apply")
    row = page.locator(f'tr.case-row[data-id="{case_id}"]')
    row.wait_for()
    row.click()
    page.locator("#case-title").filter(has_text=f"#{case_id}").wait_for()


def _check_figure(page: Any, kind: str, image: bool, compared: bool) -> None:
    fig = page.locator(f'#views figure.view[data-kind="{kind}"]')
    zh, en = LABELS[kind]
    assert fig.locator(".label-zh").inner_text() == zh and fig.locator(".label-en").inner_text() == en
    assert (fig.locator(".tag").count() == 1) is compared
    if image:
        page.wait_for_function(f"""() => {{ const i = document.querySelector('#views figure[data-kind="{kind}"] img');
                                      return i && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0; }}""")
        assert fig.locator(".placeholder").count() == 0
    else:
        assert fig.locator("img").count() == 0 and fig.locator(".placeholder").is_visible()


def test_three_way_view(live: tuple[Env, dict[str, int]], tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium chromium-driver)")
    from playwright.sync_api import expect, sync_playwright

    env, cases = live
    base = str(env.client.base_url).rstrip("/")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS, locale="zh-CN", viewport={"width": 1280, "height": 1000}
        )
        page = context.new_page()
        page.goto(f"{base}/review")
        page.fill("#key", env.scoped["reviewer"])
        page.click("#signin")
        expect(page.locator("tr.case-row").first).to_be_visible()

        _open(page, cases["full"])
        expect(page.locator("#views")).to_be_visible()
        expect(page.locator("#pair-photos")).to_be_hidden()
        assert page.locator("#views figure.view").evaluate_all("fs => fs.map(f => f.dataset.kind)") == ["id_card", "admission", "graduation"]
        for kind, compared in (("id_card", True), ("admission", True), ("graduation", False)):
            _check_figure(page, kind, image=True, compared=compared)
        widths = page.locator("#views img").evaluate_all("is => is.map(i => [i.naturalWidth, i.naturalHeight])")
        assert widths[0] == [102, 126] and all(w > 0 and h > 0 for w, h in widths)
        page.screenshot(path=str(tmp_path / "three-way.png"), full_page=True)

        page.click("#back")
        _open(page, cases["no_graduation"])
        assert page.locator("#views figure.view").count() == 3
        _check_figure(page, "id_card", image=True, compared=True)
        _check_figure(page, "admission", image=True, compared=True)
        _check_figure(page, "graduation", image=False, compared=False)
        assert page.locator("#views img").count() == 2

        page.click("#back")
        page.select_option("#f-state", "")  # both cases opened above are in review now
        page.select_option("#f-type", "intake_mismatch")
        page.click("#apply")
        page.locator(f'tr.case-row[data-id="{cases["full"]}"], tr.case-row[data-id="{cases["no_graduation"]}"]').first.wait_for(state="attached")
        ids = page.locator("tr.case-row").evaluate_all("rs => rs.map(r => Number(r.dataset.id))")
        assert cases["other_college"] not in ids
        other = cases["other_college"]
        status = page.evaluate(
            """async (id) => { const h = { Authorization: 'Bearer ' + sessionStorage.getItem('key') };
                               const r = await Promise.all([fetch('/api/v1/cases/' + id, { headers: h }), fetch('/api/v1/cases/' + id + '/photos/id_card', { headers: h })]);
                               return r.map(x => x.status); }""",
            other,
        )
        assert status == [404, 404]
        context.close()
    assert (tmp_path / "three-way.png").stat().st_size > 10_000
    with env.db.session() as s:
        card = s.query(Photo).filter(Photo.kind == "id_card").order_by(Photo.id).first()
        views = [e for e in events_for(s, "photo", card.id) if e.action == "photo.view"]
        assert views and all(e.actor.endswith(":test-reviewer-scoped") for e in views)
