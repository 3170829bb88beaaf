"""Pages checked in a real browser (issue 14): headless Chromium (Debian's ``chromium`` driven through
``/usr/bin/chromedriver`` by Selenium) opens

* the HTML report of a finished job, served by the real app (uvicorn on 127.0.0.1): the three figures are
  present and loaded (``naturalWidth > 0``), the curve table has its rows, and a screenshot is a real,
  non-blank PNG;
* the Ray dashboard of a local Ray with token authentication on, while a job trains: a user types the token
  into the dashboard's "Authentication Token Required" dialog (the token ``ray get-auth-token`` prints; the
  dashboard turns it into a cookie), and the actors view names the trials by network
  (``a1,a2 fidelity 1 seed 0``).

Screenshots are left in the test's tmp folder. Skips, saying why, without /usr/bin/chromium or its driver.
The dashboard's job runs in a subprocess of its own (``python -m tests.api.test_browser dashboard DIR``):
the test session's Ray has no dashboard and one ``ray.init`` per process.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]
TRIAL_NAME = re.compile(r"\b[ab][12](,[ab][12])* (capacity 0\.5 )?fidelity 1 seed 0\b")
FLAGS = [  # without the background-networking flags Chromium's own connections are refused here
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium with a fresh profile."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip(f"no {CHROMIUM} or {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (dev extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _non_blank_png(path: Path) -> None:
    from PIL import Image

    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), f"{path} is not a PNG"
    image = Image.open(io.BytesIO(data)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 20, f"{path} is (nearly) blank: {len(colours)} colours"


def _wait(predicate: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")


# ---------------------------------------------------------------------------------------- the report page


@pytest.fixture
def report_url(tmp_path: Path) -> Iterator[str]:
    """The real app under uvicorn on 127.0.0.1 and the report URL of a finished job in its store."""
    import httpx
    import uvicorn

    from api.app import create_app
    from api.settings import Settings
    from search.store import JobState, open_store
    from tests.api.hosts import free_port
    from tests.api.test_report import TASKS, planted_result

    (tmp_path / "data").mkdir()
    url = f"sqlite:///{tmp_path / 'api.db'}"
    settings = Settings(
        database_url=url, run_jobs=False, data_dir=tmp_path / "data", runs_dir=tmp_path / "runs"
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: server.started, 30, "the service to start")
        spec = {"dataset": {"name": "planted"}, "tasks": list(TASKS), "training": {"epochs": 3}}
        job_id = httpx.post(f"{base}/jobs", json=spec).json()["id"]
        store = open_store(url)
        store.update_job(job_id, state=JobState.RUNNING)
        store.update_job(job_id, state=JobState.SUCCEEDED, result=planted_result(job_id))
        yield f"{base}/jobs/{job_id}/report"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_report_page_shows_its_figures_and_curve_table(
    browser: Any, report_url: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    from api.report import FIGURES

    browser.get(report_url)
    _wait(lambda: browser.execute_script("return document.readyState") == "complete", 30, "the page to load")
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert [alt for alt, *_ in images] == list(FIGURES), images  # every figure, TAG's lookahead included
    assert all(done and width > 0 and height > 0 for _, done, width, height in images), images
    tables = browser.find_elements(By.TAG_NAME, "table")
    assert tables, "no curve table"
    header = [th.text for th in tables[0].find_elements(By.TAG_NAME, "th")]
    assert header[:2] == ["budget (SNT)", "cost"], header
    rows = [tr for tr in tables[0].find_elements(By.TAG_NAME, "tr") if tr.find_elements(By.TAG_NAME, "td")]
    budgets = [row.find_elements(By.TAG_NAME, "td")[0].text for row in rows]
    assert {"1", "2", "3", "4"} <= set(budgets), budgets  # one row per budget (then the baselines)
    browser.set_window_size(1400, max(1000, browser.execute_script("return document.body.scrollHeight")))
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    _non_blank_png(shot)


# ------------------------------------------------------------------------------------- the Ray dashboard


@pytest.fixture
def dashboard_job(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A local Ray with its dashboard and token auth, training a job, in a subprocess: its URL and token."""
    workdir = tmp_path / "dashboard"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0")
    log = (workdir / "scenario.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.api.test_browser", "dashboard", str(workdir)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    info_path = workdir / "dashboard.json"
    try:
        _wait(lambda: info_path.exists() or process.poll() is not None, 120, "the dashboard's Ray to start")
        assert info_path.exists(), (workdir / "scenario.log").read_text()[-3000:]
        yield {**json.loads(info_path.read_text()), "token": env["RAY_AUTH_TOKEN"], "workdir": workdir}
    finally:
        (workdir / "stop").touch()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=30)


def _log_in(browser: Any, url: str, token: str) -> None:
    """Open the dashboard, which must ask for the token (Ray's token auth is on), and type it in like a user
    would; fails if the dialog never opens or does not accept the token."""
    from selenium.webdriver.common.by import By

    browser.get(url)
    # The page's frame (its "Cluster" tab) renders before the dashboard's first API call is refused and the
    # token dialog opens: wait for the dialog itself, not for whichever shows first.
    dialog = _wait(
        lambda: browser.find_elements(By.CSS_SELECTOR, "[aria-labelledby=token-auth-dialog-title]"),
        60,
        "the dashboard's token dialog",
    )
    dialog[0].find_element(By.TAG_NAME, "input").send_keys(token)
    buttons = dialog[0].find_elements(By.TAG_NAME, "button")
    [b for b in buttons if b.text.strip().lower() in ("submit", "authenticate", "login", "log in")][
        -1
    ].click()
    _wait(
        lambda: not browser.find_elements(By.CSS_SELECTOR, "[aria-labelledby=token-auth-dialog-title]"),
        30,
        "the token dialog to accept the token",
    )


def test_the_ray_dashboard_names_trials_by_network(
    browser: Any, dashboard_job: dict[str, Any], tmp_path: Path
) -> None:
    url, token = dashboard_job["url"], dashboard_job["token"]
    _wait(lambda: (dashboard_job["workdir"] / "training").exists(), 120, "the job's first trials")
    _log_in(browser, url, token)
    browser.save_screenshot(str(tmp_path / "dashboard-overview.png"))
    browser.get(f"{url}/#/actors")
    text = _wait(
        lambda: (lambda body: body if TRIAL_NAME.search(body) else None)(
            browser.find_element("tag name", "body").text
        ),
        90,
        "the actors view to list a trial named by its network",
    )
    names = sorted(set(m.group(0) for m in TRIAL_NAME.finditer(text)))
    assert names, text[:2000]
    assert "ImplicitFunc" in text  # the Tune trial actors, each with its network as its repr
    shot = tmp_path / "dashboard-actors.png"
    assert browser.save_screenshot(str(shot))
    _non_blank_png(shot)
    _non_blank_png(tmp_path / "dashboard-overview.png")


# ----------------------------------------------------------------- the dashboard's job (run in a subprocess)


def scenario_dashboard(workdir: Path) -> None:
    """A local Ray with the dashboard (token auth from the environment) training a planted job until
    ``workdir/stop`` appears; writes ``dashboard.json`` once up and ``training`` once trials run."""
    import ray

    from search.control import JobControl
    from search.ray_runner import TuneRunner
    from search.run import run_job
    from search.store import open_store
    from search.submit import submit_job
    from tests.api.hosts import free_port

    context = ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=True,
        dashboard_port=free_port(),
        log_to_driver=False,
        object_store_memory=100 * 1024**2,
    )
    (workdir / "dashboard.json").write_text(json.dumps({"url": f"http://{context.dashboard_url}"}))
    store = open_store(f"sqlite:///{workdir / 'jobs.db'}")
    spec = {"dataset": {"name": "planted"}, "tasks": ["a1", "a2", "b1", "b2"], "training": {"epochs": 40}}
    job = submit_job(store, spec)
    control = JobControl(job.id)

    def watch() -> None:
        while not (workdir / "stop").exists():
            if store.job_trainings(job.id) and any(
                r.training.state.value == "running" for r in store.job_trainings(job.id)
            ):
                (workdir / "training").touch()
            time.sleep(0.5)
        control.interrupt()

    threading.Thread(target=watch, daemon=True).start()
    try:
        run_job(store, job.id, runs_dir=workdir / "runs", runner=TuneRunner(), control=control)
        while not (workdir / "stop").exists():  # keep the dashboard up until the test is done with it
            time.sleep(0.5)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    if sys.argv[1:2] == ["dashboard"]:
        scenario_dashboard(Path(sys.argv[2]))
