"""Time-varying covariates on the command line (issue 31): `clvlab fit --covariates PANEL
--transactions LOG` fits the API's model along the same paths (the same estimates, exactly),
`clvlab predict --covariates PANEL` writes the model's own predictions along the paths (exactly),
a calendar and static attributes mix with it, and each misuse is refused with the option named.

Data: CLVTools' apparel customers (../shared/data/apparel, read in place): 600 customers, weekly
covariates High.Season (seasonal), Gender and Channel (constant) from 2005-01-02 to 2010-12-26;
calibration to 2006-12-31, so the panel reaches 208 weeks past it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvlab
from clvlab.cli import main

APPAREL = Path(__file__).resolve().parents[2] / "shared" / "data" / "apparel"
LOG, PANEL = APPAREL / "apparel_transactions.csv", APPAREL / "apparel_dyncov.csv.gz"
LOG_OPTIONS = ["--date-col", "Date", "--amount-col", "Price"]
PANEL_OPTIONS = ["--covariates", str(PANEL), "--panel-customer-col", "Id", "--period-col",
                 "Cov.Date"]
PURCHASE, DROPOUT = ["High.Season", "Gender"], ["High.Season"]


def paths_of(rfm, **options):
    from clvlab.data.covariate_paths import covariate_paths

    return covariate_paths(pd.read_csv(PANEL), rfm, customer_col="Id", period_col="Cov.Date",
                           **options)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """rfm.parquet written by `clvlab rfm` (calibration to 2006-12-31, weeks) and a calendar
    of High.Season (the seasonal column, the same for every customer)."""
    if not PANEL.exists():
        pytest.skip("../shared/data/apparel (CLVTools' apparel data) is not beside the checkout")
    folder = tmp_path_factory.mktemp("tv_cli")
    assert main(["rfm", str(LOG), "-o", str(folder / "rfm.parquet"), "--customer-col", "Id",
                 "--time-unit", "W", "--calibration-end", "2006-12-31", "--no-progress",
                 *LOG_OPTIONS]) == 0
    panel = pd.read_csv(PANEL)
    first = panel[panel["Id"] == panel["Id"].iloc[0]]
    first[["Cov.Date", "High.Season"]].rename(columns={"Cov.Date": "period"}).to_parquet(
        folder / "calendar.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def fitted(files) -> dict:
    """The Pareto/NBD fitted by `clvlab fit --covariates` and by the API on the same inputs."""
    assert main(["fit", str(files / "rfm.parquet"), "--model", "pareto-nbd", "-o",
                 str(files / "pnbd.json"), "--purchase-covariates", ",".join(PURCHASE),
                 "--dropout-covariates", ",".join(DROPOUT), *PANEL_OPTIONS, "--transactions",
                 str(LOG), *LOG_OPTIONS]) == 0
    rfm = clvlab.read_rfm(files / "rfm.parquet")
    paths = paths_of(rfm, transactions=pd.read_csv(LOG), date_col="Date", amount_col="Price",
                     covariates=PURCHASE)
    api = clvlab.ParetoNBD(purchase_covariates=PURCHASE, dropout_covariates=DROPOUT).fit(
        rfm, covariate_paths=paths)
    return {"cli": clvlab.load_model(files / "pnbd.json"), "api": api, "rfm": rfm}


def test_fit_through_the_cli_gives_the_api_estimates_exactly(fitted, capsys):
    cli, api = fitted["cli"], fitted["api"]
    assert list(cli.covariates_.time_varying) == PURCHASE  # read along paths, not static
    assert list(cli.params_.index) == list(api.params_.index)
    np.testing.assert_array_equal(cli.params_.to_numpy(), api.params_.to_numpy())
    assert cli.params_["purchase.High.Season"] != 0  # the season moves purchasing


def test_predict_through_the_cli_is_the_model_along_the_paths_exactly(fitted, files):
    rfm, model = fitted["rfm"], fitted["cli"]
    spend = clvlab.GammaGamma().fit(rfm[rfm["frequency"] > 0])
    spend.save(files / "gg.json", overwrite=True)
    out = files / "predictions.parquet"
    assert main(["predict", str(files / "pnbd.json"), str(files / "rfm.parquet"), "--horizon",
                 "52", "-o", str(out), "--spend-model", str(files / "gg.json"),
                 "--discount-rate", "0.002", "--margin", "0.4", "--interval-level", "0.9",
                 *PANEL_OPTIONS]) == 0
    got = pd.read_parquet(out).set_index("Id")
    paths = paths_of(rfm, horizon=52, covariates=PURCHASE)
    want = model.scores(rfm, 52, covariate_paths=paths)
    want["clv"] = clvlab.customer_lifetime_value(model, spend, rfm, 52, 0.002, 0.4,
                                                 unvalued="population", covariate_paths=paths)
    interval = model.prediction_interval(rfm, 52, level=0.9, covariate_paths=paths)
    want["purchases_lower"], want["purchases_upper"] = interval["lower"], interval["upper"]
    assert list(got.index) == list(rfm.index)
    for column in want.columns:
        np.testing.assert_array_equal(got[column].to_numpy(), want[column].to_numpy(), column)
    # the season matters: the same customers scored with High.Season held at 0 differ
    flat_paths = dataclasses.replace(paths, table=paths.table.assign(**{"High.Season": 0}))
    moved = model.expected_purchases(rfm, 52, covariate_paths=flat_paths)
    assert np.abs(moved - want["expected_purchases"]).max() > 1e-3


def test_a_calendar_and_static_attributes_fit_as_through_the_api(files):
    """High.Season from a calendar shared by everyone, Gender a static attribute of the
    customers (--attributes): the API's fit on the same paths and table."""
    static = files / "static.csv"
    pd.read_csv(APPAREL / "apparel_static_covariates.csv")[["Id", "Gender"]].to_csv(static,
                                                                                    index=False)
    assert main(["fit", str(files / "rfm.parquet"), "--model", "pareto-nbd", "-o",
                 str(files / "calendar.json"), "--purchase-covariates", "High.Season,Gender",
                 "--dropout-covariates", "High.Season", "--calendar",
                 str(files / "calendar.parquet"), "--attributes", str(static), "--transactions",
                 str(LOG), *LOG_OPTIONS]) == 0
    from clvlab.data.covariate_paths import covariate_paths

    table = clvlab.read_rfm(files / "rfm.parquet")
    rfm = table.join(pd.read_csv(static).set_index("Id"))
    rfm.attrs = table.attrs
    paths = covariate_paths(None, rfm, calendar=pd.read_parquet(files / "calendar.parquet"),
                            transactions=pd.read_csv(LOG), date_col="Date", amount_col="Price")
    api = clvlab.ParetoNBD(purchase_covariates=["High.Season", "Gender"],
                           dropout_covariates=["High.Season"]).fit(rfm, covariate_paths=paths)
    cli = clvlab.load_model(files / "calendar.json")
    assert list(cli.covariates_.time_varying) == ["High.Season"]  # Gender stays static
    np.testing.assert_array_equal(cli.params_.to_numpy(), api.params_.to_numpy())


def test_a_bg_nbd_fits_and_predicts_along_the_paths_as_through_the_api(files):
    assert main(["fit", str(files / "rfm.parquet"), "--model", "bg-nbd", "-o",
                 str(files / "bgnbd.json"), "--purchase-covariates", "High.Season",
                 *PANEL_OPTIONS, "--transactions", str(LOG), *LOG_OPTIONS]) == 0
    rfm = clvlab.read_rfm(files / "rfm.parquet")
    paths = paths_of(rfm, transactions=pd.read_csv(LOG), date_col="Date", amount_col="Price",
                     covariates=["High.Season"])
    api = clvlab.BetaGeo(purchase_covariates=["High.Season"]).fit(rfm, covariate_paths=paths)
    cli = clvlab.load_model(files / "bgnbd.json")
    np.testing.assert_array_equal(cli.params_.to_numpy(), api.params_.to_numpy())
    out = files / "bg.csv"
    assert main(["predict", str(files / "bgnbd.json"), str(files / "rfm.parquet"), "--horizon",
                 "26", "-o", str(out), *PANEL_OPTIONS]) == 0
    want = cli.scores(rfm, 26, covariate_paths=paths_of(rfm, horizon=26,
                                                        covariates=["High.Season"]))
    got = pd.read_csv(out, index_col="Id")
    np.testing.assert_allclose(got[want.columns].to_numpy(), want.to_numpy(), rtol=1e-15)


def _fails(capsys, argv, *parts) -> str:
    assert main(argv) == 1
    error = capsys.readouterr().err
    for part in parts:
        assert part in error, (part, error)
    return error


def test_fit_refuses_a_panel_without_the_log_or_the_covariates(files, capsys):
    fit = ["fit", str(files / "rfm.parquet"), "--model", "pareto-nbd", "-o",
           str(files / "refused.json"), "--purchase-covariates", "High.Season"]
    _fails(capsys, fit + PANEL_OPTIONS, "--covariates needs --transactions")
    _fails(capsys, ["fit", str(files / "rfm.parquet"), "--model", "pareto-nbd", "-o",
                    str(files / "refused.json"), "--purchase-covariates", "Weather",
                    *PANEL_OPTIONS, "--transactions", str(LOG)],
           "none of the covariates ['Weather']", "High.Season")
    _fails(capsys, ["fit", str(files / "rfm.parquet"), "--model", "pareto-nbd", "-o",
                    str(files / "refused.json"), "--purchase-covariates", "High.season",
                    *PANEL_OPTIONS, "--transactions", str(LOG)],
           "did you mean 'High.season' -> 'High.Season'?")
    _fails(capsys, fit + ["--transactions", str(LOG)], "--transactions is read with --covariates")
    _fails(capsys, fit + ["--covariates", str(files / "nowhere.parquet"), "--transactions",
                          str(LOG)], "--covariates", "does not exist")
    assert not (files / "refused.json").exists()


def test_predict_refuses_a_missing_short_or_misplaced_panel(fitted, files, capsys):
    predict = ["predict", str(files / "pnbd.json"), str(files / "rfm.parquet"), "-o",
               str(files / "refused.parquet")]
    _fails(capsys, predict + ["--horizon", "52"], "fitted with time-varying covariates",
           "['High.Season', 'Gender']", "--covariates PANEL")
    # the panel ends 2010-12-26, 208 weeks after the calibration end: the data layer's message
    # (the option's column, the customer, the first period missing) reaches the user unchanged
    _fails(capsys, predict + ["--horizon", "300", *PANEL_OPTIONS], "Cov.Date",
           "ends with the period starting 2010-12-26", "for every customer", "2011-01-02")
    clvlab.ParetoNBD().fit(fitted["rfm"]).save(files / "plain.json", overwrite=True)
    _fails(capsys, ["predict", str(files / "plain.json"), *predict[2:], "--horizon", "52",
                    *PANEL_OPTIONS],
           "a covariate panel (--covariates PANEL) is for a model fitted with time-varying "
           "covariates", "this ParetoNBD was not")
    assert not (files / "refused.parquet").exists()


def test_fit_reads_the_log_columns_the_table_records(files, capsys):
    """The table of `clvlab rfm --date-col Date --amount-col Price` records both columns:
    `clvlab fit --transactions` takes them without the options, as the API does, refunds
    included (a log with refund-only days fits only with its amount column)."""
    log = pd.read_csv(LOG)
    refunds = log.groupby("Id").head(1).iloc[::4].copy()  # a refund two days after a purchase
    refunds["Date"] = (pd.to_datetime(refunds["Date"]) + pd.Timedelta(days=2)).dt.strftime(
        "%Y-%m-%d")
    refunds["Price"] = -refunds["Price"]
    refunds = refunds[~refunds.set_index(["Id", "Date"]).index.isin(
        log.set_index(["Id", "Date"]).index)]
    log = pd.concat([log, refunds[refunds["Date"] <= "2006-12-31"]], ignore_index=True)
    log.to_csv(files / "refunds.csv", index=False)
    with pytest.warns(clvlab.ClvlabWarning, match="held only refunds"):
        assert main(["rfm", str(files / "refunds.csv"), "-o", str(files / "rfm_refunds.parquet"),
                     "--customer-col", "Id", "--time-unit", "W", "--calibration-end",
                     "2006-12-31", "--no-progress", *LOG_OPTIONS]) == 0
    rfm = clvlab.read_rfm(files / "rfm_refunds.parquet")
    assert rfm.attrs["clvlab"]["refund_only_periods"] > 20  # the amount column matters:
    no_amount = rfm.copy()
    no_amount.attrs = {"clvlab": {**rfm.attrs["clvlab"], "amount_col": None}}
    with pytest.raises(clvlab.ClvlabError, match="do not match the RFM table"):
        paths_of(no_amount, transactions=log, date_col="Date", covariates=["High.Season"])
    argv = ["fit", str(files / "rfm_refunds.parquet"), "--model", "pareto-nbd", "-o",
            str(files / "recorded.json"), "--purchase-covariates", "High.Season",
            *PANEL_OPTIONS, "--transactions"]
    assert main(argv + [str(files / "refunds.csv")]) == 0  # no --date-col, no --amount-col
    paths = paths_of(rfm, transactions=log, date_col="Date", amount_col="Price",
                     covariates=["High.Season"])
    api = clvlab.ParetoNBD(purchase_covariates=["High.Season"]).fit(rfm, covariate_paths=paths)
    np.testing.assert_array_equal(clvlab.load_model(files / "recorded.json").params_.to_numpy(),
                                  api.params_.to_numpy())
    # a log that lacks the recorded column: the message says where the name came from
    log.rename(columns={"Date": "When"}).to_csv(files / "renamed.csv", index=False)
    _fails(capsys, argv + [str(files / "renamed.csv")], "column 'Date': is missing from the "
           "transaction log", "the RFM table records it as the date column of the log it was "
           "built from", "--date-col")
    assert main(argv + [str(files / "renamed.csv"), "--date-col", "When", "--overwrite"]) == 0


def test_fit_refuses_a_panel_for_a_model_without_time_varying_covariates(files, capsys):
    """Before any work: the table is not even read (here it does not exist)."""
    fit = ["fit", str(files / "no_table.parquet"), "-o", str(files / "refused.json"),
           *PANEL_OPTIONS, "--transactions", str(LOG)]
    _fails(capsys, fit + ["--model", "gamma-gamma", "--spend-covariates", "High.Season"],
           "gamma-gamma is a spend model, and spend models do not take time-varying covariates "
           "(--covariates PANEL): spend covariates are static", "--spend-covariates",
           "fitted by bg-nbd or pareto-nbd", "--model pareto-nbd")
    _fails(capsys, fit + ["--model", "lognormal"], "lognormal is a spend model")
    _fails(capsys, ["fit", str(files / "no_table.parquet"), "-o", str(files / "refused.json"),
                    "--calendar", str(files / "calendar.parquet"), "--model", "mbg-nbd"],
           "mbg-nbd (ModifiedBetaGeo) does not take time-varying covariates (--calendar FILE)",
           "its covariates are static", "fitted by bg-nbd or pareto-nbd")
    assert not (files / "refused.json").exists()


def test_a_csv_table_names_the_as_of_option_on_the_command_line(fitted, files, capsys):
    """A CSV table records no calibration end: `clvlab predict` asks for --as-of (no example
    date taken for the user's), `clvlab fit --covariates` for the Parquet table; the pyfunc keeps
    its params= wording. With --as-of, the scores are those of the Parquet table."""
    fitted["rfm"].reset_index().to_csv(files / "rfm.csv", index=False)
    predict = ["predict", str(files / "pnbd.json"), str(files / "rfm.csv"), "--time-unit", "W",
               "--customer-col", "Id", "--horizon", "26", *PANEL_OPTIONS]
    error = _fails(capsys, predict + ["-o", str(files / "refused.parquet")],
                   "rfm.csv does not record it (a CSV table never does", "--as-of DATE",
                   "(e.g. --as-of YYYY-MM-DD)")
    assert "2006-12-31" not in error and "params=" not in error
    assert main(predict + ["--as-of", "2006-12-31", "-o", str(files / "from_csv.parquet")]) == 0
    assert main(["predict", str(files / "pnbd.json"), str(files / "rfm.parquet"), "--horizon",
                 "26", *PANEL_OPTIONS, "-o", str(files / "from_parquet.parquet")]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(files / "from_csv.parquet"),
                                  pd.read_parquet(files / "from_parquet.parquet"))
    _fails(capsys, ["fit", str(files / "rfm.csv"), "--time-unit", "W", "--customer-col", "Id",
                    "--model", "pareto-nbd", "-o", str(files / "refused.json"),
                    "--purchase-covariates", "High.Season", *PANEL_OPTIONS, "--transactions",
                    str(LOG)], "--covariates (or --calendar) needs the RFM table written by "
           "`clvlab rfm` as Parquet", "rfm.csv records no calibration end",
           "--calibration-end YYYY-MM-DD")
    from clvlab.ops.serving import score_frame

    with pytest.raises(clvlab.ClvlabError, match=r"params=\{'as_of'"):
        score_frame(fitted["cli"], None, None, pd.read_csv(files / "rfm.csv"),
                    {"horizon": 26, "time_unit": "W", "customer_col": "Id",
                     "covariates": str(PANEL), "panel_customer_col": "Id",
                     "period_col": "Cov.Date"})
