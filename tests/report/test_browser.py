"""The hostile report opened in headless Chromium: nothing injected runs or loads, and the page renders.

Every payload in the fixture would, if it ran, mark the page (``data-pwned``
attribute) or fetch from a loopback server this test runs.  A control page
with the same payloads left unescaped proves the harness would see it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from distillwatch.report import render

from .conftest import BROWSER, chromium, payloads, write_results

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = BROWSER


def test_injected_script_never_runs_and_page_renders(tmp_path: Path, beacon):
    host, hits = beacon
    directory = tmp_path / "results"
    write_results(directory, beacon=host)
    html_path, _ = render(directory)

    dom = chromium(html_path, tmp_path / "profile", "--dump-dom")
    assert "<title>distillwatch: distillation campaigns</title>" in dom
    assert "data-pwned=" not in dom  # would be an attribute set by a payload; the text form is escaped
    assert "&lt;script&gt;document.documentElement.setAttribute" in dom  # the payload is there, as text
    assert "Campaign 1: c1" in dom

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    chromium(html_path, tmp_path / "profile", "--window-size=1280,3000", f"--screenshot={shot}")
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
    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    assert "data-pwned=" in dom
    assert hits, "the unescaped control page should have fetched from the beacon"
