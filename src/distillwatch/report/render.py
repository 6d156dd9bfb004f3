"""Rendering the report document to ``report.html`` and ``report.md`` with Jinja2.

Both environments run every ``{{ value }}`` through a *finalize* hook that
cleans it (bounded length, control and bidi characters made visible, e-mail
addresses redacted on request) before the format's escaping: HTML autoescape,
or :func:`~distillwatch.report.text.md_escape` for Markdown.  A template
cannot forget to escape a value, because it never sees an unescaped one.
"""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from distillwatch.report import content
from distillwatch.report.document import Document
from distillwatch.report.load import load
from distillwatch.report.text import clean, md_escape, redact_emails

CELL_CHARS = 500  # bound for any value in the report, unless content.py bounded it tighter
QUOTE_CHARS = 2000
_DATA_URI = re.compile(r"data:image/svg\+xml;base64,[A-Za-z0-9+/]*={0,2}")
_ANCHOR = re.compile(r"[^a-z0-9-]")


class _Raw(str):
    """Template-literal Markdown syntax (e.g. a table's alignment row): emitted as is."""


class _Verbatim(str):
    """Already cleaned text whose line breaks are kept (sample prompts)."""


def _kind(block: object) -> str:
    return type(block).__name__


def _multiline(value: object) -> _Verbatim:
    return _Verbatim(clean(value, QUOTE_CHARS, one_line=False))


def _chart_uri(value: object) -> Markup:
    """Only a base64 SVG data: URI made by charts.py may become an image source (and it is not cut to length)."""
    text = str(value)
    return Markup(text) if _DATA_URI.fullmatch(text) else Markup("")


def _anchor(value: object) -> str:
    return _ANCHOR.sub("-", str(value).lower())[:64]


def _environment(markdown: bool, redact: bool) -> Environment:
    def finalize(value: object) -> object:
        if value is None:
            return ""
        if isinstance(value, _Raw | Markup):
            return value
        text = value if isinstance(value, _Verbatim) else clean(value, CELL_CHARS)
        if redact:
            text = redact_emails(text)
        return md_escape(text) if markdown else text

    env = Environment(
        loader=PackageLoader("distillwatch.report", "templates"),
        autoescape=not markdown,
        finalize=finalize,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(kind=_kind, multiline=_multiline, chart_uri=_chart_uri, anchor=_anchor, raw=_Raw)
    return env


def render_document(doc: Document) -> tuple[str, str]:
    """(html, markdown) text of ``doc``."""
    html = _environment(False, doc.redacted).get_template("report.html").render(doc=doc)
    md = _environment(True, doc.redacted).get_template("report.md.txt").render(doc=doc)
    # Blank-line runs come from template control blocks; Markdown needs at most one.
    md = re.sub(r"\n{3,}", "\n\n", md)
    return html, md


def render(results_dir: Path, *, redact: bool = False) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into ``results_dir`` from the results saved there.

    Renders whatever the directory holds; missing or unreadable files are
    named in the report instead of raising.  Returns (html path, md path).
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results directory {results_dir} does not exist")
    doc = content.build(load(results_dir), redact=redact)
    html, md = render_document(doc)
    html_path, md_path = results_dir / "report.html", results_dir / "report.md"
    html_path.write_text(html, encoding="utf-8")
    md_path.write_text(md, encoding="utf-8")
    return html_path, md_path
