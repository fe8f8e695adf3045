"""The files a backtest reads: a signals CSV and ``<TICKER>_5m.csv`` price files, as frames.

IO only; the checks live below the files: ``app.backtest.signals_io.check_signals`` validates
the signals frame against the bars, ``app.schema.bars`` the price rows. A missing file or
folder, or a file that is not CSV, is an error naming the path.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from app.errors import InputError
from app.schema.bar_files import CsvSource, symbol_from_filename


def read_signals_csv(path: str | Path) -> pd.DataFrame:
    """The rows of a signals CSV as strings (empty fields stay ``""``, never NaN)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"signals file {path} does not exist")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"signals file {path}: cannot be read as CSV ({exc})") from exc


def load_price_files(
    paths: Iterable[Path], symbols: Iterable[str] | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, int]]]:
    """Bars per ticker from ``<TICKER>_5m.csv`` files, validated by the sources' reader.

    Returns the good bars per ticker and, per ticker, the rejected rows by reason.
    """
    names = list(symbols) if symbols is not None else None
    bars: dict[str, pd.DataFrame] = {}
    rejects: dict[str, dict[str, int]] = {}
    for k, path in enumerate(paths):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"price file {path} does not exist")
        symbol = names[k] if names is not None else symbol_from_filename(path)
        result = CsvSource(path).load(symbol)
        if result.good.empty:
            raise InputError(f"price file {path}: no valid bars ({result.nonzero_counts()})")
        bars[symbol] = result.good.reset_index(drop=True)
        rejects[symbol] = result.nonzero_counts()
    return bars, rejects


def price_files_in(directory: Path) -> list[Path]:
    """Every ``<TICKER>_5m.csv`` in ``directory``."""
    if not directory.is_dir():
        raise FileNotFoundError(f"prices directory {directory} does not exist")
    files = sorted(directory.glob("*_5m.csv"))
    if not files:
        raise InputError(f"prices directory {directory}: no <TICKER>_5m.csv files")
    return files
