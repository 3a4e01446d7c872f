"""lifetimes.datasets' loaders on the data clvlab bundles (``clvlab.datasets``).

Each lifetimes file that clvlab bundles is rebuilt byte for byte from clvlab's copy and read
with ``pandas.read_csv(**kwargs)``, so the keyword arguments of existing code (``index_col``,
``sep``, ``names``, ``parse_dates``...) act as they did. clvlab bundles the CDNOW logs, the
CDNOW sample's calibration summary and the donations data; lifetimes' synthetic
``example_transactions.csv`` (``load_transaction_data``) is not bundled.
"""

from __future__ import annotations

import gzip
import io

import pandas as pd

__all__ = ["load_cdnow_summary", "load_transaction_data",
           "load_cdnow_summary_data_with_monetary_value", "load_donations", "load_dataset",
           "dataset_bytes", "FILES"]

#: lifetimes' file name -> clvlab's bundled file it is rebuilt from
FILES = {
    "cdnow_customers_summary.csv": "cdnow_sample_summary.csv",
    "cdnow_customers_summary_with_transactions.csv": "cdnow_sample_summary.csv",
    "donations.csv": "donations.csv",
    "CDNOW_master.txt": "cdnow_master.csv.gz",
    "CDNOW_sample.txt": "cdnow_sample.csv.gz",
}


def _bundled(name: str) -> bytes:
    from clvlab.data.datasets import data_path

    return data_path(name).read_bytes()


def _log_text(frame: pd.DataFrame, sample: bool) -> bytes:
    """The CDNOW log as the published fixed-width text (CRLF line ends)."""
    amount = frame["amount"].map("{:7.2f}".format)
    quantity = frame["quantity"].map("{:2d}".format)
    if sample:
        lines = (" " + frame["master_id"].map("{:05d}".format) + " "
                 + frame["customer_id"].map("{:04d}".format) + " " + frame["date"].astype(str)
                 + " " + quantity + " " + amount)
        head = ""
    else:
        lines = (" " + frame["customer_id"].map("{:05d}".format) + " " + frame["date"].astype(str)
                 + " " + quantity + " " + amount)
        head = " customer_id  date number_of_cds  dollar_value\r\n"
    return (head + "\r\n".join(lines) + "\r\n").encode("ascii")


def dataset_bytes(filename: str) -> bytes:
    """The content of lifetimes' data file ``filename``, rebuilt from clvlab's bundled copy."""
    from clvlab.core.errors import ClvlabError

    if filename not in FILES:
        raise ClvlabError("{!r} is not bundled with clvlab; the lifetimes data sets it has are {}"
                          .format(filename, sorted(FILES)))
    raw = _bundled(FILES[filename])
    if filename == "cdnow_customers_summary.csv":
        frame = pd.read_csv(io.BytesIO(raw))[["ID", "x", "t_x", "T"]]
        frame.columns = ["ID", "frequency", "recency", "T"]
        return frame.to_csv(index=False).encode("ascii")
    if filename.endswith(".txt"):
        frame = pd.read_csv(io.BytesIO(gzip.decompress(raw)), dtype={"date": str})
        return _log_text(frame, sample=filename == "CDNOW_sample.txt")
    return raw


def load_dataset(filename, **kwargs):
    """
    Load a dataset of lifetimes.datasets (one that clvlab bundles).

    Parameters
    ----------
    filename: str
        for example "donations.csv" or "CDNOW_master.txt"
    **kwargs
        Passed to pandas.read_csv function.

    Returns
    -------
    DataFrame
    """
    return pd.read_csv(io.BytesIO(dataset_bytes(filename)), **kwargs)


def load_donations(**kwargs):
    """Load donations dataset as pandas DataFrame."""
    return load_dataset("donations.csv", **kwargs)


def load_cdnow_summary(**kwargs):
    """Load cdnow customers summary pandas DataFrame (ID, frequency, recency, T in weeks)."""
    return load_dataset("cdnow_customers_summary.csv", **kwargs)


def load_transaction_data(**kwargs):
    """lifetimes' synthetic example log (``example_transactions.csv``) is not bundled with
    clvlab: this raises. The CDNOW log is: ``load_dataset("CDNOW_master.txt", sep=r"\\s+")``,
    or ``clvlab.datasets.load_cdnow(sample=False)`` with parsed dates."""
    from clvlab.core.errors import ClvlabError

    raise ClvlabError("lifetimes' example_transactions.csv (synthetic data) is not bundled with "
                      "clvlab; use the CDNOW log: clvlab.lifetimes.datasets.load_dataset("
                      "'CDNOW_master.txt', sep=r'\\s+') or clvlab.datasets.load_cdnow(sample=False)")


def load_cdnow_summary_data_with_monetary_value(**kwargs):
    """Load cdnow customers summary with monetary value as pandas DataFrame."""
    df = load_dataset("cdnow_customers_summary_with_transactions.csv", **kwargs)
    df.columns = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    df = df.set_index("customer_id")
    return df
