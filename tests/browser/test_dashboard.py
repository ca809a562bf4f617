"""The dashboard in a real headless chromium, against the real API over HTTP and real Redis.

A job submitted through the API shows up in the jobs list and changes status there; its page
draws the live curve from the event stream, then the final plots from its artifacts; a search
job's page draws the fitness per generation, the front and the architecture. Jobs are run by a
real dispatcher with a scripted runner (``tests.scripted``): everything but the training.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI
from playwright.sync_api import Page, expect

from api.services import Services
from service.schemas import JobKind, JobStatus, SearchSpec
from service.settings import Settings
from tests.api.conftest import LiveServer
from tests.conftest import Zips
from tests.scripted import Script, scripted_dispatcher, submit_meta_train

# One Redis is enough to test a page: the server at 127.0.0.1:6379.
pytestmark = [
    pytest.mark.parametrize("redis_backend", ["server"], indirect=True),
    pytest.mark.timeout(120),
]
FIRST_PAINT_TARGET_MS = 1000.0  # issue 9: first paint <= 1 s with 10,000 jobs
MANY_JOBS = 10_000


def _points(page: Page, selector: str) -> int:
    """The points of the first SVG path matching ``selector`` (0 when there is none yet):
    its ``data-points``, checked against the path's drawing commands."""
    path = page.locator(selector)
    if path.count() == 0:
        return 0
    n = int(path.first.get_attribute("data-points") or 0)
    commands = re.findall(r"[MLHV]", path.first.get_attribute("d") or "")
    assert commands[:1] == ["M"] and len(commands) >= n, commands  # drawn through every point
    return n


def test_a_job_appears_changes_status_and_its_page_plots_it(
    server: LiveServer,
    settings: Settings,
    redis_client: redis.Redis,
    tmp_path: Path,
    zips: type[Zips],
    page: Page,
) -> None:
    page.goto(f"{server.url}/#/jobs")
    expect(page.locator("#jobs-table")).to_be_visible()
    job_id = submit_meta_train(server, tmp_path, zips)  # through the API
    row = page.locator(f'tr[data-id="{job_id}"]')
    expect(row.locator(".status")).to_have_text("queued", timeout=10_000)  # the list refreshes

    script = Script(steps=8, step_s=0.5)
    script.gate.clear()  # hold the job at its first progress until the page is open
    with scripted_dispatcher(settings, redis_client, script):
        expect(row.locator(".status")).to_have_text("running", timeout=10_000)
        row.locator("a").click()
        expect(page.locator("#job-meta .status")).to_have_text("running")
        script.gate.set()
        # The live curve grows from the event stream while the job runs.
        live = '.plot path.series[data-series="loss"]'
        page.wait_for_function(
            f"() => Number(document.querySelector('{live}')?.dataset.points || 0) >= 2",
            timeout=15_000,
        )
        assert 2 <= _points(page, live) < 8
        expect(page.locator("#job-meta .status")).to_have_text("succeeded", timeout=20_000)
    # Then the plots of meta.json: the curve (loss and accuracy) and the meta-population.
    expect(page.locator(".plot svg")).to_have_count(2)
    assert _points(page, '.plot path.series[data-series="loss"]') == 8
    assert _points(page, '.plot path.series[data-series="accuracy"]') == 8
    expect(page.locator("a.artifact")).to_have_text(["meta.json"])
    page.screenshot(path=str(tmp_path / "meta_train_job.png"), full_page=True)
    assert (tmp_path / "meta_train_job.png").stat().st_size > 10_000

    # Back in the list, the status changed there too.
    page.goto(f"{server.url}/#/jobs?kind=meta_train")
    expect(row.locator(".status")).to_have_text("succeeded")


def _scripted_search(
    server: LiveServer, settings: Settings, redis_client: redis.Redis, script: Script
) -> str:
    """A search job run to its end by a scripted dispatcher; its id."""
    job, _ = server.services.jobs.create(JobKind.search, SearchSpec(supernet="s", dataset="d"))
    with scripted_dispatcher(settings, redis_client, script):
        deadline = time.monotonic() + 20
        while not server.services.jobs.get(job.id).status.terminal:
            assert time.monotonic() < deadline, "the scripted search did not finish"
            time.sleep(0.05)
    return job.id


def test_a_search_jobs_page_draws_fitness_front_and_architecture(
    server: LiveServer, settings: Settings, redis_client: redis.Redis, tmp_path: Path, page: Page
) -> None:
    job_id = _scripted_search(server, settings, redis_client, Script(steps=5, step_s=0.05))
    assert server.services.jobs.get(job_id).status is JobStatus.succeeded
    page.goto(f"{server.url}/#/jobs/{job_id}")
    expect(page.locator("#job-meta .status")).to_have_text("succeeded")
    best = page.locator('.plot path.series[data-series="best"]')
    expect(best).to_have_attribute("data-points", "5")  # one point per generation
    assert _points(page, '.plot path.series[data-series="best"]') == 5
    expect(page.locator('.plot path.series[data-series="front"]')).to_have_attribute(
        "data-points", "4"
    )
    assert _points(page, '.plot path.series[data-series="front"]') == 4
    layers = page.locator("#arch g.layer")
    expect(layers).to_have_count(2)
    expect(layers.nth(0)).to_contain_text("conv3x3")
    expect(layers.nth(1)).to_contain_text("width 64")
    expect(layers.nth(1)).to_contain_text("MACs 583k")
    expect(page.locator("#arch")).to_contain_text("3.46k parameters")
    expect(page.locator("a.artifact")).to_have_count(3)
    expect(page.locator("#arch .shipped")).to_have_count(0)  # the drawn net shipped
    page.screenshot(path=str(tmp_path / "search_job.png"), full_page=True)


def test_a_search_that_shipped_the_pixels_says_so_above_the_drawing(
    server: LiveServer, settings: Settings, redis_client: redis.Redis, page: Page
) -> None:
    job_id = _scripted_search(
        server, settings, redis_client, Script(steps=2, step_s=0.05, pixels=True)
    )
    page.goto(f"{server.url}/#/jobs/{job_id}")
    note = page.locator("#arch .shipped")
    expect(note).to_contain_text("nearest-centroid classifier on raw pixels")
    expect(note).to_contain_text("pixels 0.800, adapted net 0.600")
    expect(page.locator("#arch g.layer")).to_have_count(2)  # the replaced net, still drawn


def test_a_search_that_shipped_the_net_times_the_pixels_says_so(
    server: LiveServer, settings: Settings, redis_client: redis.Redis, page: Page
) -> None:
    job_id = _scripted_search(
        server, settings, redis_client, Script(steps=2, step_s=0.05, expert=2.0)
    )
    page.goto(f"{server.url}/#/jobs/{job_id}")
    note = page.locator("#arch .shipped")
    expect(note).to_contain_text("times a nearest-centroid classifier on raw pixels (weight 2")
    expect(page.locator("#arch g.layer")).to_have_count(2)  # the net that shipped, drawn


def test_a_search_results_warnings_stand_above_the_drawing(
    server: LiveServer, settings: Settings, redis_client: redis.Redis, page: Page
) -> None:
    said = "this supernet meta-trained one net <b>(x)</b>"
    job_id = _scripted_search(
        server, settings, redis_client, Script(steps=2, step_s=0.05, warnings=(said,))
    )
    page.goto(f"{server.url}/#/jobs/{job_id}")
    note = page.locator("#arch .warning")
    expect(note).to_have_text(f"Warning: {said}")  # as text: the result is not HTML
    expect(page.locator("#arch .shipped")).to_have_count(1)  # the warning only: a net shipped


def test_datasets_page_shows_class_counts_and_thumbnails(
    server: LiveServer, tmp_path: Path, zips: type[Zips], page: Page
) -> None:
    data = zips.classes({"Latin/a": 3, "Latin/b": 2, "Greek/c": 4}, wrapper="omni/")
    ds = server.client.upload_dataset(zips.write(tmp_path / "omni.zip", data))
    page.goto(f"{server.url}/#/datasets")
    card = page.locator(f'.dataset[data-id="{ds.id}"]')
    expect(card).to_contain_text("3 classes · 9 images · 2 groups")
    expect(card.locator(".counts tbody tr")).to_have_count(3)
    thumbs = card.locator(".thumbs img")
    expect(thumbs).to_have_count(8)  # up to 3 images of each class
    page.wait_for_function(
        "() => [...document.querySelectorAll('.thumbs img')].every(i => i.naturalWidth > 0)"
    )


def test_with_keys_the_page_asks_once_and_sends_the_key(
    server: LiveServer,
    _uvicorn: tuple[FastAPI, str],
    settings: Settings,
    redis_client: redis.Redis,
    page: Page,
) -> None:
    keyed = settings.model_copy(update={"api_keys": "acme:acme-key-0123456789"})
    server.services = _uvicorn[0].state.services = Services.build(keyed, redis_client)
    job, _ = server.services.jobs.create(
        JobKind.search, SearchSpec(supernet="s", dataset="d"), tenant="acme"
    )
    assert httpx.get(f"{server.url}/v1/jobs").status_code == 401
    page.goto(f"{server.url}/")  # the page itself is public: it holds no data
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    page.fill("#key-input", "acme-key-0123456789")
    page.click("#key-save")
    expect(page.locator(f'tr[data-id="{job.id}"]')).to_be_visible()
    page.reload()  # kept in localStorage: not asked again
    expect(page.locator(f'tr[data-id="{job.id}"]')).to_be_visible()
    expect(dialog).not_to_be_visible()


def fill_jobs(services: Services, n: int) -> None:
    """``n`` queued search jobs written straight through the job store (no HTTP, no checks)."""
    spec = SearchSpec(supernet="s", dataset="d")
    for _ in range(n):
        services.jobs.create(JobKind.search, spec)


# Milliseconds from navigation start: first contentful paint, and the moment the jobs table
# got its rows (a performance mark the page sets after it rendered the first page).
PAINT_JS = """() => ({
  fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
  rows: performance.getEntriesByName("atnas:jobs-rows")[0]?.startTime ?? null,
})"""


def test_first_paint_of_the_jobs_list_with_10000_jobs_is_under_a_second(
    server: LiveServer, page: Page
) -> None:
    t0 = time.monotonic()
    fill_jobs(server.services, MANY_JOBS)
    fill_s = time.monotonic() - t0
    # Warm the browser itself (its renderer's start-up is not the page's): another page of the
    # service. The dashboard's own files and data are not cached by that.
    warm = page.context.browser.new_context()  # type: ignore[union-attr]
    warm.new_page().goto(f"{server.url}/healthz")
    warm.close()
    page.goto(f"{server.url}/#/jobs")
    expect(page.locator("#jobs-table tbody tr[data-id]")).to_have_count(50)
    page.wait_for_function("() => performance.getEntriesByName('first-contentful-paint').length")
    paint = page.evaluate(PAINT_JS)
    print(
        f"\ndashboard with {MANY_JOBS} jobs (filled in {fill_s:.1f} s): first contentful paint "
        f"{paint['fcp']:.0f} ms, first page of rows {paint['rows']:.0f} ms"
    )
    assert paint["fcp"] <= FIRST_PAINT_TARGET_MS
    assert paint["rows"] <= FIRST_PAINT_TARGET_MS
    # The pager walks on by cursor: the next page is other jobs.
    first_ids = page.locator("tr[data-id]").evaluate_all("rs => rs.map(r => r.dataset.id)")
    page.click("#p-older")
    expect(page.locator("#p-page")).to_have_text("page 2")
    second_ids = page.locator("tr[data-id]").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert len(second_ids) == 50 and not set(first_ids) & set(second_ids)
