"""What a result says at a glance: the few figures, tables and notes that a kind puts first.

Each kind declares `summarise(result, params) -> Headline` at registration. The job page's
Result tab, the HTML report, `runlab show` and `runlab submit --wait` all show the same
headline, with numbers rounded to the digits that their standard error supports
(`runlab.format.measured`). Plain data and text: no Streamlit, no store.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    label: str
    text: str
    help: str = ""

    @property
    def pair(self) -> tuple[str, str]:
        return self.label, self.text


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Headline:
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The figures as `label: text` lines, for a terminal."""
        return [f"{f.label}: {f.text}" for f in self.figures]
