"""The report as a format-neutral document: sections of paragraphs, tables, figures and quotes.

Building the content once and rendering it twice (HTML and Markdown templates
that only loop over these blocks) keeps the two files saying the same thing.
Every string in a block is plain text; escaping belongs to the templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distillwatch.report.charts import Chart


@dataclass
class Para:
    text: str
    style: str = "text"  # text | lead | note | warn


@dataclass
class Table:
    caption: str
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool] = field(default_factory=list)  # right-align these columns
    note: str = ""

    def __post_init__(self) -> None:
        if not self.numeric:
            self.numeric = [False] * len(self.headers)


@dataclass
class Figure:
    """A chart with the table of its numbers (the report must read without pictures)."""

    chart: Chart
    table: Table


@dataclass
class Bullets:
    caption: str
    items: list[str]


@dataclass
class Quotes:
    """Verbatim attacker text (sample prompts): shown in boxes, never interpreted."""

    caption: str
    items: list[str]
    note: str = ""


Block = Para | Table | Figure | Bullets | Quotes


@dataclass
class Section:
    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)
    subsections: list[Section] = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section]
    redacted: bool
