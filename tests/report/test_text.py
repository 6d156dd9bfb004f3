from markdown_it import MarkdownIt

from distillwatch.report.text import clean, md_escape, redact_emails


def test_clean_bounds_length_and_says_how_long_the_original_was():
    out = clean("A" * 1_000_000, 100)
    assert out.startswith("A" * 100)
    assert "1,000,000 characters, cut" in out
    assert len(out) < 140


def test_clean_makes_bidi_and_invisible_characters_visible():
    out = clean("invoice\u202etxt.exe zero\u200bwidth \u2066iso\u2069")
    assert "\u202e" not in out and "\u200b" not in out and "\u2066" not in out
    assert "invoice[U+202E]txt.exe" in out
    assert "[U+200B]" in out and "[U+2066]" in out and "[U+2069]" in out


def test_clean_control_characters_and_lines():
    assert clean("a\x00b\x1bc") == "a[U+0000]b[U+001B]c"
    assert clean("one\n\ntwo\tthree") == "one two three"
    assert clean("one\ntwo", one_line=False) == "one\ntwo"
    assert clean(None) == ""
    assert clean(12) == "12"


def test_redact_emails():
    assert redact_emails("write to bob.smith+x@example.co.uk now") == "write to [e-mail redacted] now"


def _render(md: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(md)


def test_md_escape_leaves_no_link_image_or_html():
    hostile = [
        "[x](javascript:alert(1))",
        "![x](http://evil.example/x.png)",
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        "<http://evil.example>",
        "[ref]: http://evil.example",
        "&lt;script&gt; &#106;avascript:",
        "`code` **bold** _em_ ~~strike~~",
    ]
    for text in hostile:
        html = _render("- " + md_escape(text) + "\n")
        assert "<a" not in html and "<img" not in html and "<script" not in html, (text, html)
        assert "<code" not in html and "<strong" not in html and "<em" not in html, (text, html)


def test_md_escape_keeps_table_rows_intact():
    row = "| " + md_escape("a | b\nc") + " | 1 |"
    html = _render("| v | n |\n|---|---|\n" + row + "\n")
    assert html.count("<td>") == 2
    assert "a | b c" in html


def test_md_escape_defangs_autolinks_and_list_markers():
    out = md_escape("see http://evil.example and www.evil.example or bob@evil.example")
    assert "://" not in out and "www." not in out and "@" not in out
    for nested in ("- nested", "1. nested", "2) nested"):
        html = _render("- " + md_escape(nested) + "\n")
        assert html.count("<li>") == 1 and "<ol" not in html, html
