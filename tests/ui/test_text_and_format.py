"""The ui helpers that decide how user text and numbers read on every page."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlab import format as words
from ui import format as fmt
from ui import tables
from ui.text import md_escape, one_line

# What a CommonMark renderer does with a backslash before ASCII punctuation: drops it.
_UNESCAPE = re.compile(r"\\([" + re.escape(string.punctuation) + r"])")
OPENERS = "\\`*_{}[]<>#|~$:&=!+-/"


def rendered(markdown: str) -> str:
    return _UNESCAPE.sub(r"\1", markdown)


def bare_openers(markdown: str) -> list[str]:
    """Characters of OPENERS that no backslash escapes, read left to right as a parser does."""
    bare, i = [], 0
    while i < len(markdown):
        if markdown[i] == "\\" and i + 1 < len(markdown):
            i += 2
            continue
        if markdown[i] in OPENERS:
            bare.append(markdown[i])
        i += 1
    return bare


@pytest.mark.parametrize(
    "raw",
    [
        "<img src=x onerror=alert(1)>",
        "**bold** _it_ `code` ~~gone~~",
        "[click](javascript:alert(1)) ![img](x.png)",
        ":red[alarm] :material/home: $x^2$",
        "# heading",
        "> quote",
        "- item",
        "1. first",
        "a | b\n--|--",
        "&lt;b&gt;",
        "back\\slash",
    ],
)
def test_md_escape_leaves_no_markdown_opener_unescaped(raw: str) -> None:
    escaped = md_escape(raw)
    assert bare_openers(escaped) == []
    assert rendered(escaped) == raw


def test_md_escape_hides_icon_shortcodes_from_streamlits_source_rewrite() -> None:
    # Streamlit replaces ":material/" in the Markdown source before any escape is parsed.
    assert ":material/" not in md_escape("home :material/home: sweet")


def test_md_escape_breaks_ordered_lists_at_line_starts_only() -> None:
    assert md_escape("1. first\n  22) second\r3. third") == "1\\. first\n  22\\) second\r3\\. third"
    assert md_escape("pi is 3.14 (roughly)") == "pi is 3.14 (roughly)"


@given(st.text())
def test_md_escape_renders_back_to_the_same_text_and_leaves_nothing_bare(raw: str) -> None:
    escaped = md_escape(raw)
    assert rendered(escaped) == raw
    assert bare_openers(escaped) == []


def test_plain_words_are_left_alone() -> None:
    assert md_escape("Monte Carlo π run 7") == "Monte Carlo π run 7"


def test_one_line_flattens_and_shortens() -> None:
    assert one_line("a\nb\t c") == "a b c"
    assert one_line("x" * 300, limit=10) == "x" * 9 + "…"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0.25, "250 ms"),
        (3.456, "3.5 s"),
        (42, "42 s"),
        (185, "3 min 05 s"),
        (2 * 3600 + 4 * 60, "2 h 04 min"),
        (3 * 86400 + 4 * 3600, "3 d 4 h"),
        (-1, "0 ms"),
    ],
)
def test_duration_reads_compactly(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_ago_counts_back_from_now() -> None:
    now = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
    assert fmt.ago(now - timedelta(seconds=2), now) == "just now"
    assert fmt.ago(now - timedelta(seconds=30), now) == "30 s ago"
    assert fmt.ago(now - timedelta(minutes=5), now) == "5 min ago"
    assert fmt.ago(now - timedelta(hours=3), now) == "3 h ago"
    assert fmt.ago(now - timedelta(days=2), now) == "2 d ago"
    assert fmt.ago(now - timedelta(days=30), now) == "2025-02-02"
    assert fmt.ago(None, now) == "—"


def test_elapsed_runs_to_now_until_finished() -> None:
    start = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
    assert fmt.elapsed(start, None, start + timedelta(seconds=42)) == "42 s"
    assert fmt.elapsed(start, start + timedelta(seconds=5), start + timedelta(hours=1)) == "5.0 s"
    assert fmt.elapsed(None, None) == "—"


def test_numbers_keep_the_digits_that_matter() -> None:
    assert fmt.number(1_000_000) == "1,000,000"
    assert fmt.number(3.14159265358979) == "3.141592654"
    assert fmt.number(1.5e-7) == "1.5000e-07"
    assert fmt.percent(0.456) == "46 %"
    assert fmt.label("seconds_per_stage") == "Seconds per stage"


def test_browser_json_keeps_every_digit_of_big_integers() -> None:
    seed = 2936024911900542511  # a double would show 2936024911900542500
    value = {"seed": seed, "n": 7, "ok": True, "xs": [seed, 1.5], "nested": {"s": -seed}}
    assert fmt.browser_json(value) == {
        "seed": str(seed),
        "n": 7,
        "ok": True,
        "xs": [str(seed), 1.5],
        "nested": {"s": str(-seed)},
    }


def test_when_gives_the_age_then_the_exact_time_and_only_the_time_past_a_week() -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    paris = ZoneInfo("Europe/Paris")
    assert fmt.when(now - timedelta(minutes=3), paris, now) == "3 min ago · 2026-11-23 12:57:00 CET"
    assert fmt.when(now - timedelta(days=8), UTC, now) == "2026-11-15 12:00:00 UTC"
    assert fmt.when(None) == fmt.DASH


def test_the_pages_word_durations_and_sizes_as_the_cli_does() -> None:
    assert (fmt.duration, fmt.size, fmt.DASH) == (words.duration, words.size, words.DASH)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (40, "under a minute"),
        (6 * 60 + 20, "6 min"),
        (89 * 60, "89 min"),
        (125 * 60, "2 h 05 min"),
        (76 * 3600, "3 d 4 h"),
    ],
)
def test_rough_durations_are_to_the_minute(seconds: float, text: str) -> None:
    assert words.rough_duration(seconds) == text


def test_file_sizes_read_as_upload_limits_state_them() -> None:
    assert words.file_size(12_345) == "12,345 bytes"
    assert words.file_size(50 * 1024 * 1024) == "50.0 MB"
    assert words.size(1536) == "1.5 KiB"


def test_a_one_point_series_is_a_marker_on_an_axis_that_contains_it() -> None:
    from ui import charts

    fig = charts.series_figure({"estimate": ([4_000_000], [3.1416]), "other": ([1, 2], [5, 6])})
    assert fig is not None
    one, two = fig.data
    assert one.mode == "markers" and two.mode == "lines+markers"
    assert list(fig.layout.xaxis.range) == [0.0, 8_000_000.0]  # not a sliver around the point
    assert fig.layout.xaxis2.range is None  # an axis of many points keeps its own range


@given(st.text(min_size=1, max_size=60))
def test_a_job_link_shows_its_name_as_the_table_reads_it_back(name: str) -> None:
    """The table's link column captures the fragment with its `display_text` regex, then
    decodes it (`+` as a space, then `decodeURIComponent`): the text shown is the name."""
    link = tables.job_link("AbC123", name)
    assert link.startswith("job?id=AbC123#")
    captured = re.search(r"#(.*)$", link, re.S)
    assert captured is not None
    assert unquote(captured.group(1).replace("+", "%20"), errors="strict") == name


def test_series_of_one_measure_share_a_panel_and_an_interval_is_a_band() -> None:
    from ui import charts

    def titles(names: list[str]) -> list[str]:
        return [p.title for p in charts.panels(names)]

    # Option pricing: the price inside its interval; portfolio risk: the levels of VaR together.
    assert titles(["ci_high", "ci_low", "price"]) == ["price"]
    assert charts.panels(["ci_high", "ci_low", "price"])[0].band
    assert titles(["var_95", "var_99"]) == ["var_95 · var_99"]
    # Bootstrap's interval alone; unrelated series keep a panel each.
    assert titles(["ci_high", "ci_low"]) == ["confidence interval"]
    assert titles(["estimate", "stage_seconds"]) == ["estimate", "stage_seconds"]

    steps = [1, 2, 3]
    fig = charts.series_figure(
        {
            "price": (steps, [10.0, 10.4, 10.5]),
            "ci_low": (steps, [9, 10, 10.3]),
            "ci_high": (steps, [11, 10.8, 10.7]),
        }
    )
    assert fig is not None
    high, low, price = fig.data
    assert (high.y, low.y, low.fill) == ((11, 10.8, 10.7), (9, 10, 10.3), "tonexty")
    assert price.name == "price" and price.error_y.array is None
    assert [a.text for a in fig.layout.annotations] == ["price"]


def test_a_one_point_series_with_an_interval_draws_an_error_bar() -> None:
    from ui import charts

    fig = charts.series_figure(
        {
            "price": ([500_000], [10.4]),
            "ci_low": ([500_000], [10.1]),
            "ci_high": ([500_000], [10.9]),
        }
    )
    assert fig is not None
    (price,) = fig.data
    assert price.mode == "markers"
    assert price.error_y.array == pytest.approx((0.5,))
    assert price.error_y.arrayminus == pytest.approx((0.3,))
    assert list(fig.layout.xaxis.range) == [0.0, 1_000_000.0]
