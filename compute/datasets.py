"""Uploaded tables: the reference a job keeps, and the checks a CSV passes before it is used.

An upload is kept once in the artifact store under its SHA-256; a job's parameters hold an
`Upload` (name, size, SHA-256), so a re-run reads the very same bytes, and a changed or missing
file fails the job with a clear message instead of giving other numbers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from runlab.errors import InvalidUpload
from runlab.format import file_size
from runlab.text import CONTROL

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from runlab.artifacts import ArtifactStore

MAX_BYTES = 50 * 1024 * 1024
MAX_LINE = 100_000  # characters: a real table's row is far shorter; a longer one is a CSV bomb
MAX_COLUMNS = 1_000
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what the CSV parser ends a line at


class Upload(BaseModel):
    """What a job keeps of an uploaded file."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=255, description="The file's name when uploaded.")
    size: int = Field(ge=1, le=MAX_BYTES, description="Its size in bytes.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Its SHA-256, also its key.")


def too_big(size: int) -> str:
    if file_size(size) == file_size(MAX_BYTES):  # just over: only the bytes tell them apart
        return f"the file is {size:,} bytes; the limit is {MAX_BYTES:,} bytes (50 MB)"
    return f"the file is {file_size(size)}; the limit is {file_size(MAX_BYTES)}"


def read_limited(stream: IO[bytes], field: str = "data") -> bytes:
    """At most MAX_BYTES of a stream, or InvalidUpload: the size a file reports is not trusted
    (`/dev/zero` and pipes report 0), so one byte past the limit is all that is ever read.
    A raw stream may return less than asked, so it is read until its end or the limit."""
    chunks: list[bytes] = []
    total = 0
    while total <= MAX_BYTES:
        chunk = stream.read(MAX_BYTES + 1 - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total <= MAX_BYTES:
        return b"".join(chunks)  # one chunk, as a file gives it, is returned uncopied
    try:  # over the limit: a stream that knows its end gives the size for the message
        size = stream.seek(0, io.SEEK_END)
    except (OSError, ValueError):
        size = 0
    if size > MAX_BYTES:
        raise InvalidUpload(too_big(size), field)
    raise InvalidUpload(f"the file is larger than the limit of {file_size(MAX_BYTES)}", field)


def read_csv(data: bytes, field: str = "data", *, as_text: bool = False) -> pd.DataFrame:
    """The table in an uploaded CSV, or InvalidUpload saying what is wrong with the file.

    Sizes and line lengths are checked before parsing, so a hostile file costs little. The
    first row names the columns, and a column of numbers is read as numbers. With `as_text`,
    for a caller that reads its own values and names lines in its messages, every row that is
    not blank (the first one too) comes back as the text of its cells, indexed by its line in
    the file; a row shorter than the first is filled with empty cells, and a longer one is
    refused. Rows after a quoted value that spans lines are numbered as if it did not.
    """
    if not data or not data.strip():
        raise InvalidUpload("the file is empty", field)
    if len(data) > MAX_BYTES:
        raise InvalidUpload(too_big(len(data)), field)
    if b"\x00" in data[:65536]:
        raise InvalidUpload("not a CSV file: it holds binary data", field)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidUpload("not a CSV file: it is not UTF-8 text", field) from None
    longest = max(len(line) for line in text.splitlines())
    if longest > MAX_LINE:
        raise InvalidUpload(
            f"a line is {longest:,} characters long; the limit is {MAX_LINE:,}", field
        )
    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    import pandas as pd

    try:
        if as_text:
            df = _text_rows(text, delimiter)
        else:
            df = pd.read_csv(io.StringIO(text), sep=delimiter, engine="c", low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "it does not parse"
        raise InvalidUpload(f"not a CSV file: {first}", field) from None
    if df.shape[1] > MAX_COLUMNS:
        raise InvalidUpload(f"{df.shape[1]:,} columns; the limit is {MAX_COLUMNS:,}", field)
    if len(df) < (2 if as_text else 1):
        raise InvalidUpload("the file has a header but no rows", field)
    if not as_text and not numeric_columns(df):
        raise InvalidUpload("no numeric column: every column holds text", field)
    return df


def _text_rows(text: str, delimiter: str) -> pd.DataFrame:
    """The rows of `text` that are not blank, as text, indexed by their line numbers."""
    import pandas as pd

    # Blank lines are kept as rows, so that a row's place is its line; but the parser finds no
    # columns in a blank first line, so the blank lines that lead are skipped, and counted.
    lead = 0
    for line in _LINE_BREAK.split(text):
        if line.strip():
            break
        lead += 1
    df = pd.read_csv(
        io.StringIO(text),
        sep=delimiter,
        engine="c",
        header=None,
        dtype=str,
        na_filter=False,
        skip_blank_lines=False,
        skiprows=lead,
    )
    df.index = pd.RangeIndex(lead + 1, lead + 1 + len(df))
    filled = (df.apply(lambda cells: cells.str.strip()) != "").any(axis=1)
    return df[filled]


def numeric_columns(df: pd.DataFrame) -> list[str]:
    """Columns whose every non-empty value is a number."""
    import pandas as pd

    return [str(c) for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]


def column(df: pd.DataFrame, name: str, field: str = "column") -> np.ndarray:
    """A numeric column as float64, refused if absent, not numeric, or with missing values."""
    import numpy as np

    if name not in [str(c) for c in df.columns]:
        raise InvalidUpload(f"the file has no column {name!r}", field)
    series = df[next(c for c in df.columns if str(c) == name)]
    if name not in numeric_columns(df):
        raise InvalidUpload(f"column {name!r} is not numeric", field)
    values = series.to_numpy(dtype=np.float64)
    missing = ~np.isfinite(values)
    if missing.any():
        rows = np.flatnonzero(missing)
        first = ", ".join(str(r + 2) for r in rows[:3])  # +2: the header, and 1-based lines
        raise InvalidUpload(
            f"column {name!r} has {len(rows):,} missing or non-finite value(s) (line {first}"
            f"{', …' if len(rows) > 3 else ''})",
            field,
        )
    return values


@dataclass(frozen=True)
class Checked:
    """An uploaded CSV read once: the reference a job keeps, its bytes and its table."""

    ref: Upload
    data: bytes
    table: pd.DataFrame


def check_upload(name: str, data: bytes, field: str = "data") -> Checked:
    """Check an uploaded CSV, storing nothing: a caller with other values to check keeps the
    bytes (`ArtifactStore.put_upload`) once they pass, and checks them against the table."""
    table = read_csv(data, field)
    digest = hashlib.sha256(data).hexdigest()
    # A file name may hold bytes that are not UTF-8, or control characters: neither is text a
    # database can keep, so each becomes "?".
    shown = CONTROL.sub("?", name[-255:])
    return Checked(Upload(name=shown or "upload.csv", size=len(data), sha256=digest), data, table)


def reference(name: str, data: bytes, field: str = "data") -> Upload:
    """Check an uploaded CSV and return the reference a job keeps, storing nothing."""
    return check_upload(name, data, field).ref


def store(artifacts: ArtifactStore, name: str, data: bytes | IO[bytes]) -> Upload:
    """Check an uploaded CSV and keep it; the returned reference goes in the job's parameters.

    A stream is read through `read_limited`. A folder that cannot take the file raises
    `UploadNotStored`, an InvalidUpload whose message names the folder and its setting.
    """
    if not isinstance(data, bytes):
        data = read_limited(data)
    ref = reference(name, data)
    artifacts.put_upload(data)
    return ref


def load(artifacts: ArtifactStore, upload: Upload | dict[str, Any]) -> pd.DataFrame:
    """The table behind a job's upload, read back and checked again."""
    ref = upload if isinstance(upload, Upload) else Upload.model_validate(upload)
    return read_csv(artifacts.get_upload(ref.sha256))


@dataclass(frozen=True)
class ColumnSummary:
    """One column of a table, as a person checks that it was read as meant."""

    name: str
    count: int  # values present
    missing: int
    # Numeric columns only (those `numeric_columns` offers); None for text, or with no value.
    min: float | None = None
    mean: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class TableSummary:
    """An uploaded table at a glance: its shape, each column, and its first rows."""

    rows: int
    columns: tuple[ColumnSummary, ...]
    head: pd.DataFrame


def summarize(df: pd.DataFrame, head: int = 5) -> TableSummary:
    """Counts, missing values and, for numeric columns, min, mean and max; and the first rows.

    Min and max keep the column's own type (an integer column's stay integers, exact), so
    they can be shown as the file holds them.
    """
    numeric = set(numeric_columns(df))
    present = df.count()
    columns = []
    for i, name in enumerate(df.columns):
        count = int(present.iloc[i])
        col = ColumnSummary(str(name), count, len(df) - count)
        values = df.iloc[:, i].dropna()
        if str(name) in numeric and len(values):
            col = replace(
                col,
                min=_scalar(values.min()),
                mean=float(values.mean()),
                max=_scalar(values.max()),
            )
        columns.append(col)
    return TableSummary(len(df), tuple(columns), df.head(head))


def _scalar(value: Any) -> float:
    """A numpy scalar as the Python number it holds: an int stays an int."""
    item = value.item() if hasattr(value, "item") else value
    return item if isinstance(item, int | float) else float(item)
