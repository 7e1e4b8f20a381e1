"""The admin dashboard in headless Chromium (Debian packages chromium and
chromium-driver): after a simulated afternoon of a queue that keeps its
completed jobs, a cache and sessions, the page loads, every plot draws data,
the growth finder's table and the forecast alert are there, and the browser
logs no error. The screenshot is kept as target/test-artifacts/dashboard.png."""

import random
import re
import shutil
import urllib.request
from pathlib import Path

import pytest
import redis
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from conftest import running_server

ARTIFACTS = Path(__file__).resolve().parents[3] / "target" / "test-artifacts"
NAMESPACES = (
    "queues match bull:* limit 16mb evict none; sessions match sess:* reserve 4mb evict none; "
    "cache default evict allkeys-lru"
)


def browser():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail(
            "headless Chromium is missing (Debian: apt-get install chromium chromium-driver); "
            "the dashboard test needs the real browser",
            pytrace=False,
        )
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1500"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


def simulate(r):
    """Three simulated hours, a minute per guardrail tick: BullMQ-shaped jobs that are
    never removed, a cache read with a skew (misses filled), sessions with a TTL."""
    rng = random.Random(7)
    job = 0
    for minute in range(180):
        p = r.pipeline(transaction=False)
        for _ in range(20):
            job += 1
            p.hset(f"bull:emails:{job}", "data", "x" * 300)
            p.zadd("bull:emails:completed", {str(job): job})
        for _ in range(200):
            k = int(3000 * rng.random() ** 2)
            p.get(f"page:{k}")
            p.set(f"page:{k}", "y" * 200)
        p.set(f"sess:{minute}", "token", ex=3600)
        p.execute()
        r.execute_command("DEBUG", "GUARD-TICK", "60000")


def test_dashboard_renders_every_plot_without_errors():
    args = ("--guard-interval", "0", "--enable-debug-command", "yes", "--maxmemory", "64mb", "--namespace", NAMESPACES)
    with running_server("redoubt", args) as port:
        r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=30)
        simulate(r)
        base = f"http://127.0.0.1:{r.info('server')['admin_port']}"
        with urllib.request.urlopen(base + "/", timeout=10) as resp:
            html = resp.read().decode()
            csp = resp.headers["Content-Security-Policy"]
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        # nothing is loaded from elsewhere: the only URLs are XML namespace names
        urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
        assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xhtml"}, urls

        driver = browser()
        try:
            driver.get(base + "/#6h")
            WebDriverWait(driver, 20).until(lambda d: d.execute_script("return Number(document.body.dataset.renders || 0)") >= 1)
            points = {
                name: driver.execute_script(
                    f"return Number(document.querySelector('#{name} svg').getAttribute('data-points'))"
                )
                for name in ("memory", "hits", "mrc", "ops")
            }
            assert all(n > 0 for n in points.values()), points
            lines = driver.execute_script("return document.querySelectorAll('svg path.line').length")
            assert lines >= 8, f"{lines} lines drawn"
            table = driver.find_element("css selector", "#patterns table").text
            first = table.splitlines()[1]
            assert first.startswith("bull:emails:completed"), table
            alerts = driver.find_element("css selector", "#alerts").text
            assert "forecast:queues" in alerts and "namespace 'queues' grows" in alerts, alerts
            assert driver.find_element("css selector", "#state").text == "1 open alert"
            tiles = driver.find_element("css selector", "#tiles").text
            assert "Hit ratio" in tiles and "of 64.0 MiB" in tiles, tiles
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "dashboard.png"
            assert driver.save_screenshot(str(shot))
            assert shot.stat().st_size > 20_000
            errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
            assert errors == [], errors
        finally:
            driver.quit()
