import re

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from distillwatch.cli.main import app
from distillwatch.respond.text import safe

HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=500), st.integers(min_value=1, max_value=200))
def test_safe_text_is_bounded_and_shows_no_hidden_characters(text, limit):
    out = safe(text, limit)
    assert not HIDDEN.search(out)
    # bounded: each kept character becomes at most a 6-character \\uXXXX escape, markup escapes add a backslash
    assert len(out) <= 7 * limit


def test_safe_text_escapes_markup_and_bidi():
    assert safe("[red]x[/red]") == "\\[red]x\\[/red]"
    assert safe("a\u202eb") == "a\\u202eb"
    assert safe("x" * 100, 10) == "x" * 9 + "…"


def test_serve_refuses_to_start_without_tokens(tmp_path, monkeypatch):
    monkeypatch.delenv("DISTILLWATCH_API_TOKENS", raising=False)
    monkeypatch.delenv("DISTILLWATCH_API_TOKENS_FILE", raising=False)
    result = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2 and "no API tokens" in result.output
    (tmp_path / "tokens").write_text("short\n")
    result = CliRunner().invoke(
        app, ["serve", "--db", str(tmp_path / "s.duckdb"), "--tokens-file", str(tmp_path / "tokens")]
    )
    assert result.exit_code == 2 and "shorter than 16" in result.output
