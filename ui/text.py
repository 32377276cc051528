"""User text inside Markdown-rendering elements (titles, alerts, progress labels), kept literal.

Streamlit renders Markdown in nearly every label, so a job named `**x**` would turn bold and
`:red[x]` red. Where a user string must sit in such an element, it goes through `md_escape`,
which backslash-escapes every character that can open Markdown, HTML, LaTeX or a Streamlit
directive. Wherever no Markdown is wanted at all, pages use `st.text`, `st.code` or a dataframe.
"""

from __future__ import annotations

import re

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that can open
# something: emphasis, code, links and images, HTML, headings, tables, strikethrough, LaTeX ($),
# Streamlit directives (:red[...]), entities (&) and setext lines (=). The slash is there for
# icons: Streamlit rewrites ":material/" in the raw source before parsing, escapes or not.
_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~$:&=!+\-/])")
# "1. " or "1) " at the start of a line (after \n or \r) would open an ordered list.
_ORDERED = re.compile(r"(?:^|(?<=[\r\n]))([ \t]*\d+)([.)])")


def md_escape(text: str) -> str:
    """`text` as Markdown that renders to exactly `text`."""
    return _ORDERED.sub(r"\1\\\2", _SPECIAL.sub(r"\\\1", text))


def one_line(text: str, limit: int = 200) -> str:
    """A single line for headings and labels, where a newline would end the element."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
