"""An uploaded table summed up for the form: counts, missing values, min, mean and max."""

from __future__ import annotations

import pytest

from compute.datasets import ColumnSummary, read_csv, summarize
from ui.upload_summary import column_rows, headline, number


def test_numeric_columns_get_min_mean_max_and_text_columns_counts_only() -> None:
    table = read_csv(b"n,x,label,empty\n3,0.5,a,\n-1,,b,\n7,2.5,,\n")

    s = summarize(table)

    assert s.rows == 3
    assert s.columns == (
        ColumnSummary("n", 3, 0, -1, 3.0, 7),
        ColumnSummary("x", 2, 1, 0.5, 1.5, 2.5),
        ColumnSummary("label", 2, 1),
        ColumnSummary("empty", 0, 3),  # read as numbers, but none there: nothing to say
    )
    assert type(s.columns[0].min) is int and type(s.columns[0].max) is int  # exact, as in the file


def test_the_first_rows_are_kept_in_order() -> None:
    table = read_csv(b"i\n" + b"".join(f"{i}\n".encode() for i in range(12)))

    assert summarize(table).head["i"].tolist() == [0, 1, 2, 3, 4]
    assert summarize(table, head=3).head["i"].tolist() == [0, 1, 2]
    assert summarize(table).rows == 12


def test_the_summary_reads_with_grouped_digits_and_no_trailing_zeros() -> None:
    table = read_csv(b"big,small\n1000000,0.00012345678\n3000001,0.5\n")

    assert column_rows(summarize(table)) == [
        {
            "Column": "big",
            "Count": "2",
            "Missing": "0",
            "Min": "1,000,000",
            "Mean": "2,000,000",
            "Max": "3,000,001",
        },
        {
            "Column": "small",
            "Count": "2",
            "Missing": "0",
            "Min": "0.000123457",
            "Mean": "0.250062",
            "Max": "0.5",
        },
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "1"), (12_345, "12,345"), (10.5, "10.5"), (3.0, "3"), (1e-7, "1e-07"), (None, "")],
)
def test_numbers_are_shown_exactly_when_whole_and_to_six_digits_otherwise(
    value: float | None, text: str
) -> None:
    assert number(value) == text


def test_the_headline_counts_rows_and_columns_in_words() -> None:
    one = summarize(read_csv(b"a\n1\n"))
    many = summarize(read_csv(b"a,b\n" + b"1,2\n" * 1500))

    assert headline("one.csv", one) == "one.csv: 1 row × 1 column"
    assert headline("many.csv", many) == "many.csv: 1,500 rows × 2 columns"


def test_a_mean_that_cancels_out_reads_zero_not_float_noise() -> None:
    table = read_csv(b"r\n0.1\n0.2\n-0.3\n")
    [column] = summarize(table).columns
    assert column.mean is not None and column.mean != 0  # what float sums leave

    [row] = column_rows(summarize(table))
    assert (row["Min"], row["Mean"], row["Max"]) == ("-0.3", "0", "0.2")
