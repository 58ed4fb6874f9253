"""Tables as pandas DataFrames: CSV, Markdown and LaTeX text, atomic writes, CSV reading.

The frames hold display strings (numbers already rounded the way each table shows
them), so every format prints exactly those cells. Markdown is a GitHub pipe table
with one space around each cell (no column padding, so a row reads the same whatever
the other rows hold); LaTeX is a booktabs ``tabular`` from :meth:`DataFrame.style`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from tabulate import DataRow, TableFormat

from epamnet.errors import file_error
from epamnet.io.atomic import write_text

#: The Markdown rule under the header, per column alignment letter ('l' left, 'r' right, as in LaTeX).
_RULE = {"l": "---", "r": "---:"}


def csv_text(frame: pd.DataFrame) -> str:
    """The frame as CSV (header, no index, ``\\n`` line ends)."""
    return frame.to_csv(index=False, lineterminator="\n")


def markdown_table(frame: pd.DataFrame, align: str) -> str:
    """The frame as a pipe table, ``align`` one letter ('l'/'r') per column; no final newline."""
    rule = "|" + "|".join(_RULE[a] for a in align) + "|"
    row = DataRow("|", "|", "|")
    fmt = TableFormat(
        lineabove=None, linebelowheader=lambda widths, aligns: rule, linebetweenrows=None, linebelow=None,
        headerrow=row, datarow=row, padding=1, with_header_hide=None,
    )  # fmt: skip
    # colalign "" leaves cells unpadded; numparse off keeps the cells' own rounding.
    return frame.to_markdown(index=False, tablefmt=fmt, colalign=[""] * len(align), disable_numparse=True)


def latex_tabular(frame: pd.DataFrame, align: str, midrule_before: Sequence[int] = ()) -> str:
    """The frame as a booktabs ``tabular`` (cells are LaTeX already: nothing is escaped).

    ``midrule_before``: positions of the rows that open a new group under a ``\\midrule``.
    """

    def rules(data: pd.DataFrame) -> pd.DataFrame:
        css = pd.DataFrame("", index=data.index, columns=data.columns)
        for i in midrule_before:
            css.iloc[i, 0] = "midrule:--nowrap;"  # a cell command: "\midrule <first cell>"
        return css

    latex = frame.style.hide(axis="index").apply(rules, axis=None).to_latex(column_format=align, hrules=True)
    return latex.replace("\n\\midrule ", "\n\\midrule\n")  # each group rule on a line of its own


def write_table(stem: str | Path, texts: Mapping[str, str]) -> list[Path]:
    """Write ``<stem>.<ext>`` for each ``ext: text`` atomically; the paths, in that order."""
    paths = [Path(f"{stem}.{ext}") for ext in texts]
    for path, text in zip(paths, texts.values(), strict=True):
        write_text(path, text)
    return paths


def read_csv_table(path: str | Path, *, absent: str, absent_fix: str, fix: str) -> pd.DataFrame:
    """Every cell of a CSV another stage wrote, as text ('' where empty).

    An absent file is an EpamnetError ``<path>: <absent>; <absent_fix>``; an empty file
    is a frame without columns; a file that is not CSV is an EpamnetError naming it,
    with ``fix``.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except FileNotFoundError:
        raise file_error(path, absent, absent_fix) from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise file_error(path, f"not a valid CSV ({' '.join(str(exc).split())})", fix) from None
    return frame.fillna("")
