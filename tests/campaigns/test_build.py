"""Campaign text safety (attacker-controlled text is bounded and stripped)."""

from __future__ import annotations

from distillwatch.campaigns.build import bounded_text
from distillwatch.campaigns.summary import _md


def test_bounded_text_strips_controls_and_bidi() -> None:
    hostile = "ok\x00\x1b[31m\u202egnp.exe\u2066" + "x" * 5000
    out = bounded_text(hostile, 100)
    assert len(out) == 100 and out.endswith("…")
    assert "\x00" not in out and "\x1b" not in out and "\u202e" not in out and "\u2066" not in out


def test_markdown_escaping() -> None:
    assert _md("<script>|*x*") == "\\<script\\>\\|\\*x\\*"
