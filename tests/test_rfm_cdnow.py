"""RFM summaries of the CDNOW logs against the published figures, by both engines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.datasets import load_cdnow_summary

from conftest import CDNOW_SPLIT, SHARED_DATA, assert_same_rfm, both_engines


def test_cdnow_sample_published_counts(cdnow_sample):
    rfm = both_engines(cdnow_sample, amount_col="amount", time_unit="W", **CDNOW_SPLIT)
    assert len(rfm) == 2357
    assert int((rfm["frequency"] > 0).sum()) == 946
    assert int(rfm["frequency"].sum()) == 2457
    assert int(rfm["frequency_holdout"].sum()) == 1882
    assert rfm["T"].max() == 272 / 7
    assert (rfm["duration_holdout"] == 273 / 7).all()  # 1997-09-30 to 1998-06-30 is 273 days


def test_cdnow_sample_matches_published_summary(cdnow_sample):
    """The published summary is ours rounded to 2 decimals (weeks and dollars)."""
    rfm = clvlab.rfm_summary(cdnow_sample, amount_col="amount", time_unit="W", **CDNOW_SPLIT)
    published = load_cdnow_summary()
    assert rfm.index.equals(published.index)
    assert (rfm["frequency"] == published["frequency"]).all()
    for column in ("recency", "T", "monetary_value"):
        assert np.abs(rfm[column] - published[column]).max() <= 0.005 + 1e-9, column


def test_same_day_purchases_are_merged(cdnow_sample):
    rfm = clvlab.rfm_summary(cdnow_sample, amount_col="amount", time_unit="D")
    merged_rows = cdnow_sample.groupby(["customer_id", "date"]).ngroups
    assert merged_rows == 6696  # as the data's README says
    assert int(rfm["frequency"].sum()) + len(rfm) == merged_rows


@pytest.mark.parametrize("time_unit, days", [("D", 1), ("W", 7), ("M", 30.436875)])
def test_time_units_scale_durations(cdnow_sample, time_unit, days):
    days_rfm = clvlab.rfm_summary(cdnow_sample, time_unit="D", **CDNOW_SPLIT)
    rfm = both_engines(cdnow_sample, time_unit=time_unit, **CDNOW_SPLIT)
    np.testing.assert_allclose(rfm["T"] * days, days_rfm["T"], rtol=1e-14)
    np.testing.assert_allclose(rfm["recency"] * days, days_rfm["recency"], rtol=1e-14)


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_cdnow_master_engines_agree_from_files(cdnow_master, tmp_path, file_format):
    path = tmp_path / f"cdnow.{file_format}"
    if file_format == "parquet":
        cdnow_master.to_parquet(path, index=False)
    else:
        cdnow_master.to_csv(path, index=False)
    kwargs = dict(amount_col="amount", time_unit="W", **CDNOW_SPLIT)
    in_memory = clvlab.rfm_summary(cdnow_master, **kwargs)
    from_file = clvlab.rfm_summary(str(path), **kwargs)  # DuckDB: the default for paths
    assert_same_rfm(in_memory, from_file)
    assert len(in_memory) == 23570


def test_cdnow_master_raw_text_with_date_format(cdnow_master, tmp_path):
    """Integer yyyymmdd dates (as in the raw files) need date_format; both engines then agree."""
    raw = cdnow_master.assign(date=cdnow_master["date"].dt.strftime("%Y%m%d").astype("int64"))
    path = tmp_path / "raw.csv"
    raw.to_csv(path, index=False)
    kwargs = dict(amount_col="amount", time_unit="W", date_format="%Y%m%d", **CDNOW_SPLIT)
    expected = clvlab.rfm_summary(cdnow_master, amount_col="amount", time_unit="W", **CDNOW_SPLIT)
    # the same table; its attrs also record the format the log's dates were read with
    expected.attrs["clvlab"] = {**expected.attrs["clvlab"], "date_format": "%Y%m%d"}
    assert_same_rfm(clvlab.rfm_summary(raw, **kwargs), expected)
    assert_same_rfm(clvlab.rfm_summary(str(path), **kwargs), expected)


def test_shared_raw_file_reads_like_the_bundled_copy(cdnow_master):
    if not (SHARED_DATA / "CDNOW_master.txt").exists():
        pytest.skip("../shared/data is not beside the checkout")
    raw = pd.read_csv(SHARED_DATA / "CDNOW_master.txt", sep=r"\s+", dtype={"date": str})
    assert len(raw) == len(cdnow_master)
    assert (raw["customer_id"].to_numpy() == cdnow_master["customer_id"].to_numpy()).all()
    assert (raw["dollar_value"].to_numpy() == cdnow_master["amount"].to_numpy()).all()


def test_glob_of_files_reads_all_parts(cdnow_master, tmp_path):
    bounds = [0, 20_000, 45_000, len(cdnow_master)]
    for part in range(3):
        chunk = cdnow_master.iloc[bounds[part]:bounds[part + 1]]
        chunk.to_parquet(tmp_path / f"part-{part}.parquet", index=False)
    kwargs = dict(amount_col="amount", time_unit="W", **CDNOW_SPLIT)
    assert_same_rfm(clvlab.rfm_summary(str(tmp_path / "part-*.parquet"), **kwargs),
                    clvlab.rfm_summary(cdnow_master, **kwargs))
