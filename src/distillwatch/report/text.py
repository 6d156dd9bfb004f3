"""Making attacker-controlled text safe to show.

Every string that came from traffic (prompts, user agents, e-mail domains, even
campaign ids and reasons, which quote traffic) is hostile.  Before it reaches a
template it is *cleaned*: bounded in length, control and bidirectional-override
characters made visible instead of acting on the surrounding text.  Then each
output format escapes it: Jinja2's HTML autoescape for ``report.html`` and
:func:`md_escape` for ``report.md``.
"""

from __future__ import annotations

import re
import unicodedata

# Default bound for any string that is shown; fields with tighter needs pass their own.
MAX_TEXT = 300

# Bidirectional controls reorder the text around them (the "Trojan Source" trick):
# an RLO can make `exe.txt` read as `txt.exe`.  They are replaced by a visible tag.
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Zero-width and other invisible format characters that hide or join text.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_VISIBLE_TAG = {ord(c): f"[U+{ord(c):04X}]" for c in _BIDI + _INVISIBLE}

_WHITESPACE_RUN = re.compile(r"\s+")
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']{1,64}@[A-Za-z0-9.\-\u00a0-\uffff]{1,255}")


def clean(value: object, limit: int = MAX_TEXT, *, one_line: bool = True) -> str:
    """``value`` as a bounded, inert string: at most ``limit`` characters plus a note of what was cut.

    Bidi and invisible characters become ``[U+XXXX]`` tags; other control
    characters become ``[U+XXXX]`` too, except newlines and tabs, which are kept
    when ``one_line`` is false and folded into spaces otherwise.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    total = len(text)
    # Cut first: a 1 MB prompt must cost no more than a short one.
    text = text[: limit * 2]
    text = text.translate(_VISIBLE_TAG)
    text = "".join(_visible_control(ch, one_line) for ch in text)
    if one_line:
        text = _WHITESPACE_RUN.sub(" ", text).strip()
    if len(text) > limit or total > limit * 2:
        text = text[:limit].rstrip() + f"… [{total:,} characters, cut]"
    return text


def _visible_control(ch: str, one_line: bool) -> str:
    if ch in "\n\t":
        return " " if one_line else ch
    if ch == "\r":
        return "" if not one_line else " "
    # Cc: C0/C1 controls; Cf left after the bidi table: other format characters.
    if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs"):
        return f"[U+{ord(ch):04X}]"
    return ch


def redact_emails(text: str) -> str:
    """Replace anything shaped like an e-mail address with a marker."""
    return _EMAIL.sub("[e-mail redacted]", text)


# Characters with meaning in CommonMark/GFM inline syntax or tables.  Escaping
# them with a backslash makes each a literal character (CommonMark: any ASCII
# punctuation may be backslash-escaped).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#+!|~&$])")
# At the start of a list item these would open a nested list ("- 1. x", "- - x").
_MD_LEADING = re.compile(r"^(\s*)(-|\d{1,9}[.)])(?=\s|$)")
# GFM turns bare URLs and www. names into links; break them so they stay text.
_AUTOLINK = re.compile(r"(?i)(://|\bwww\.)")


def md_escape(value: object) -> str:
    """``value`` as Markdown that renders as exactly that text: no links, images, HTML or table breaks."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    # GFM also links bare e-mail addresses; "[at]" keeps them readable as text.
    text = _EMAIL.sub(lambda m: m.group(0).replace("@", "[at]"), text)
    text = _AUTOLINK.sub(lambda m: "[:]//" if m.group(1) == "://" else m.group(1)[:3] + "[.]", text)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_LEADING.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], text)
    # A newline would end a table row; the report keeps each value on one line.
    return text.replace("\r", " ").replace("\n", " ")
