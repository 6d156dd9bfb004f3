"""The hostile report opened in headless Chromium: nothing injected runs or loads, and the page renders.

Every payload in the fixture would, if it ran, mark the page (``data-pwned``
attribute) or fetch from a loopback server this test runs.  A control page
with the same payloads left unescaped proves the harness would see it.
"""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distillwatch.report import render

from .conftest import payloads, write_results

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (Debian package chromium)"),
]


class _Beacon(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def beacon():
    """A loopback HTTP server that records every request it gets."""
    _Beacon.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Beacon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", _Beacon.hits
    finally:
        server.shutdown()
        server.server_close()


def _chromium(page: Path, profile: Path, *args: str) -> str:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=3000",  # let any timer-driven payload fire before the snapshot
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_injected_script_never_runs_and_page_renders(tmp_path: Path, beacon):
    host, hits = beacon
    directory = tmp_path / "results"
    write_results(directory, beacon=host)
    html_path, _ = render(directory)

    dom = _chromium(html_path, tmp_path / "profile", "--dump-dom")
    assert "<title>distillwatch: distillation campaigns</title>" in dom
    assert "data-pwned=" not in dom  # would be an attribute set by a payload; the text form is escaped
    assert "&lt;script&gt;document.documentElement.setAttribute" in dom  # the payload is there, as text
    assert "Campaign 1: c1" in dom

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    _chromium(html_path, tmp_path / "profile", "--window-size=1280,3000", f"--screenshot={shot}")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10  # text, tables and charts, not a blank page
    assert (pixels < 128).mean() > 0.01
    assert hits == [], f"the report made requests: {hits}"


def test_control_page_shows_the_harness_detects_injection(tmp_path: Path, beacon):
    host, hits = beacon
    page = tmp_path / "control.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>control</title></head><body>"
        + "".join(payloads(host)[:8])
        + "</body></html>"
    )
    dom = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert "data-pwned=" in dom
    assert hits, "the unescaped control page should have fetched from the beacon"
