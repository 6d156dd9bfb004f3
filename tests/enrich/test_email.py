"""E-mail facts: domain, disposable lists, local-part shapes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from distillwatch.enrich.email import EmailLists, domain, local_part_pattern


@pytest.fixture(scope="module")
def lists() -> EmailLists:
    return EmailLists.load()


def test_domain_forms() -> None:
    got = domain(pa.array(["John.Smith@Gmail.COM", "x.com", " <bob@Example.org.> ", "a@b@c.io", "user@", "", None])).to_pylist()
    assert got == ["gmail.com", "x.com", "example.org", "c.io", None, None, None]


def test_disposable_defaults_and_subdomains(lists: EmailLists) -> None:
    got = lists.is_disposable(pa.array(["a@mailinator.com", "b@eu.mailinator.com", "yopmail.com", "c@gmail.com",
                                        "d@university.edu", None, "@"])).to_pylist()
    assert got == [True, True, True, False, False, None, None]


def test_user_list_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "burners.txt"
    p.write_text("# ours\nBurner.Example\n@tempbox.test\n", encoding="utf-8")
    mine = EmailLists.load([p], use_defaults=False)
    assert mine.is_disposable(pa.array(["x@burner.example", "y@TEMPBOX.test", "z@mailinator.com"])).to_pylist() == [True, True, False]
    bad = tmp_path / "bad.txt"
    bad.write_text("ok.test\nnot a domain\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.txt, line 2"):
        EmailLists.load([bad], use_defaults=False)


@pytest.mark.parametrize(
    ("email", "shape"),
    [
        ("john.smith83@x.com", "a.a9"),
        ("user_4821@x.com", "a_9"),
        ("x7k2q9@x.com", "a9a9a9"),
        ("Anna-Maria+news@x.com", "a-a+a"),
        ("müller.jürgen@x.de", "a.a"),
        ("x.com", None),
        (None, None),
    ],
)
def test_local_part_pattern(email: str | None, shape: str | None) -> None:
    assert local_part_pattern(pa.array([email], pa.string())).to_pylist() == [shape]


def test_hostile_input_is_bounded(lists: EmailLists) -> None:
    huge = "a" * 1_000_000 + "@" + "b" * 1_000_000 + ".com"
    out_domain = domain(pa.array([huge, "x\x00y@evil\u202e.com"])).to_pylist()
    assert len(out_domain[0]) <= 255
    assert len(local_part_pattern(pa.array([huge])).to_pylist()[0]) <= 64
    assert lists.is_disposable(pa.array([huge])).to_pylist() == [False]
