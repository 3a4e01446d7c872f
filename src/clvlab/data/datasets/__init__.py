"""Reference data sets of the customer-base-analysis literature, packaged with clvlab.

Sources: the CDNOW logs (Fader, Hardie & Lee 2005), the 1995 donations cohort (Fader, Hardie &
Shang 2010) and the two subscription cohorts of Fader & Hardie (2007). These are public research
data sets; the copies here come from the project's shared reference data.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_cdnow", "load_cdnow_summary", "load_donations", "load_sbg_survival", "data_path"]


def data_path(name: str):
    """Path (a Traversable) of a packaged data file, e.g. ``data_path("cdnow_master.csv.gz")``.

    Parameters
    ----------
    name : str
        The file's name in the package's data folder.

    Returns
    -------
    importlib.resources.abc.Traversable
        Its path (open it with ``.open("rb")``).
    """
    return resources.files(__package__).joinpath("data", name)


def load_cdnow(sample: bool = True) -> pd.DataFrame:
    """The CDNOW transaction log, one row per purchase record as published (not merged).

    Columns ``customer_id`` (int64), ``date`` (datetime64, day precision), ``quantity`` (number
    of CDs), ``amount`` (US dollars). ``sample=True`` gives the 1/10 systematic sample of
    Fader, Hardie & Lee (2005): 2,357 customers, 6,919 rows, ``customer_id`` being the sample's
    id (1-2357, as in the published calibration summary) and ``master_id`` the id in the master
    log. ``sample=False`` gives the master log: 23,570 customers, 69,659 rows.

    Parameters
    ----------
    sample : bool, default True
        The 1/10 sample (True) or the master log (False).

    Returns
    -------
    pandas.DataFrame
        The log, one row per purchase record.
    """
    name = "cdnow_sample.csv.gz" if sample else "cdnow_master.csv.gz"
    with data_path(name).open("rb") as handle:
        frame = pd.read_csv(handle, compression="gzip", dtype={"date": str})
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    frame["amount"] = frame["amount"].astype("float64")
    return frame


def load_cdnow_summary() -> pd.DataFrame:
    """The published calibration summary of the CDNOW sample (weeks, rounded to 2 decimals).

    Indexed by ``customer_id`` with ``frequency``, ``recency``, ``T`` and ``monetary_value``
    (the original columns x, t_x, T and zbar). Because of the rounding, likelihoods on it differ
    from those on an exact summary in the third decimal.

    Returns
    -------
    pandas.DataFrame
        2,357 rows, one per customer of the sample.
    """
    with data_path("cdnow_sample_summary.csv").open("rb") as handle:
        frame = pd.read_csv(handle)
    frame = frame.rename(columns={"ID": "customer_id", "x": "frequency", "t_x": "recency",
                                  "zbar": "monetary_value"}).set_index("customer_id")
    # the summary is in weeks (Fader, Hardie & Lee's table); recorded as rfm_summary records it
    frame.attrs["clvlab"] = {"time_unit": "W", "customer_col": "customer_id"}
    return frame


def load_donations() -> pd.DataFrame:
    """Discrete-time donations of the 1995 cohort (11,104 donors, 6 annual opportunities).

    Compressed: ``frequency``, ``recency``, ``periods`` and ``weights`` (donors with that pattern).

    Returns
    -------
    pandas.DataFrame
        One row per pattern: ``frequency``, ``recency``, ``periods``, ``weights``.
    """
    with data_path("donations.csv").open("rb") as handle:
        return pd.read_csv(handle)


def load_sbg_survival() -> pd.DataFrame:
    """Customers still subscribed at the start of years 0-7, cohorts ``regular`` and ``high_end``.

    Returns
    -------
    pandas.DataFrame
        The file's table: one row per year, the survivors of each cohort.
    """
    with data_path("sbg_survival.csv").open("rb") as handle:
        return pd.read_csv(handle)
