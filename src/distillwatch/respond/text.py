"""Showing attacker-controlled text (account ids, notes, e-mails) safely on a terminal."""

from __future__ import annotations

import re

from rich.markup import escape

# C0/C1 controls, bidi overrides and isolates, zero-width characters: each can hide or
# reorder what an analyst sees, so they are shown as visible \\u escapes instead.
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def safe(text: object, limit: int = 80) -> str:
    """Bounded, control-free, rich-markup-escaped form of ``text`` for terminal output."""
    s = "" if text is None else str(text)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    s = _HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", s)
    return escape(s)
