"""The ``fit``, ``predict`` and ``backtest`` commands: their options and their bodies.

The models and the backtests are imported when a command runs (or its options are added: fit's
help lists the registered models), never for `clvlab --help` (app._parser)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clvlab.cli import time_varying
from clvlab.cli.options import add_event_options, add_log_options
from clvlab.core.errors import ClvlabError

__all__ = ["add_commands", "column_notes", "horizon_text"]

_UNIT_WORDS = {"h": "hours", "D": "days", "W": "weeks", "M": "months of 30.436875 days"}

#: what each score column means, printed under every scoring printout
COLUMN_NOTES = {
    "p_alive": "probability that the customer is still active at the end of the history",
    "probability_of_purchase": "probability of at least one purchase within the horizon",
    "expected_purchases": "expected number of purchases within the horizon",
    "expected_spend": "expected spend per purchase (not a total)",
    "expected_spend_per_purchase": "expected spend per purchase (not a total)",
    "clv": "customer lifetime value over the horizon (expected purchases x spend per purchase "
           "x margin, discounted)",
    "purchases_lower": "lower end of the central prediction interval of purchases within the "
                       "horizon (a count: it holds at least the level's share)",
    "purchases_upper": "upper end of that interval",
}


def horizon_text(horizon: float, unit: str | None) -> str:
    """``"horizon 52 W (weeks)"``: a horizon is a number of time units, never a bare number."""
    if unit is None:
        return f"horizon {horizon:g} (time unit unknown)"
    return f"horizon {horizon:g} {unit} ({_UNIT_WORDS.get(unit, unit)})"


def column_notes(columns) -> list[str]:
    notes = [f"  {name}: {COLUMN_NOTES[name]}" for name in columns if name in COLUMN_NOTES]
    if any(str(c).startswith("purchases_q") for c in columns):
        notes.append("  purchases_q<q>: the q-quantile of purchases within the horizon (the "
                     "smallest count n with P(X <= n) >= q)")
    if any(str(c).startswith("clv_q") for c in columns):
        notes.append("  clv_q<q>: the q-quantile of CLV over the horizon (Monte Carlo: "
                     "--clv-draws simulated futures a customer)")
    return notes


def add_commands(commands, default_candidates, complete=lambda command: True) -> None:
    """The fit, predict and backtest subcommands on the parser's ``commands``; fit and backtest
    get their options when ``complete(name)`` says so (app._parser)."""
    _add_fit(commands, complete("fit"))
    _add_predict(commands)
    _add_backtest(commands, default_candidates, complete("backtest"))


def _add_fit(commands, with_options: bool) -> None:
    fit = commands.add_parser(
        "fit", help="fit a model to an RFM table and save it as JSON",
        description="Fit a model by maximum likelihood (or Bayesian inference) to its table "
                    "(Parquet or CSV): an RFM table (e.g. from `clvlab rfm`) for BG/NBD, MBG/NBD, "
                    "Pareto/NBD and Gamma-Gamma; frequency, recency, periods for BG/BB; duration, "
                    "churned for sBG. Print the summary and save the model as JSON.")
    if not with_options:
        return  # listed by `clvlab --help`; --model's choices and help read every model
    from clvlab.models import registry

    fit.add_argument("rfm", help="RFM table (.parquet or .csv)")
    fit.add_argument("--model", required=True, choices=sorted(registry.names()),
                     help="; ".join(f"{entry.name}: {entry.model_class.__name__} on "
                                    f"{', '.join(entry.columns)}" for entry in registry.MODELS))
    fit.add_argument("-o", "--output", required=True, help="model file (.json)")
    fit.add_argument("--customer-col", default=None,
                     help="customer id column (default: the one the file records, else "
                          "customer_id when present)")
    fit.add_argument("--time-unit", default=None,
                     help="time unit of the table's durations (h, D, W or M), recorded in the "
                          "model; read from a Parquet file written by `clvlab rfm`, required for "
                          "a CSV table of BG/NBD, MBG/NBD or Pareto/NBD")
    fit.add_argument("--weights-col", default=None,
                     help="column holding how many customers each row stands for")
    fit.add_argument("--penalty", type=float, default=0.0, help="L2 penalty on the parameters")
    fit.add_argument("--method", default="mle", choices=["mle", "map", "nuts", "advi"],
                     help="maximum likelihood (default) or Bayesian through PyMC; the posterior "
                          "is saved beside the model as <name>.posterior.nc")
    fit.add_argument("--draws", type=int, default=1000, help="posterior draws per chain")
    fit.add_argument("--tune", type=int, default=1000, help="NUTS tuning steps per chain")
    fit.add_argument("--chains", type=int, default=4)
    fit.add_argument("--seed", type=int, default=None, help="random seed of the sampler")
    for process, moves in (("purchase", "purchasing"), ("dropout", "dropout"),
                           ("spend", "spend per purchase")):
        fit.add_argument(f"--{process}-covariates", default=None, metavar="COLUMNS",
                         help=f"comma-separated attribute columns that move {moves} (e.g. "
                              "gender,channel): columns of the table or of --attributes")
    fit.add_argument("--shared-covariates", default=None, metavar="COLUMNS",
                     help="covariates of both purchase and dropout with one coefficient")
    fit.add_argument("--covariate-penalty", type=float, default=0.0,
                     help="L2 penalty on the covariate coefficients")
    fit.add_argument("--dropout-form", default=None, choices=["a_and_b", "b"],
                     help="bg-nbd and mbg-nbd: how dropout covariates move the Beta distribution "
                          "of the dropout probability: a_and_b (default; scale a and b together, "
                          "CLVTools' form, the mean does not move) or b (they move the mean); "
                          "in a backtest candidate: 'bg-nbd[Channel;dropout_form=b]'")
    fit.add_argument("--attributes", default=None,
                     help="static customer attributes known at acquisition (.parquet or .csv, "
                          "with the customer id column or indexed by it), joined to the table "
                          "by clvlab.rfm_summary's rules before the fit; columns the table "
                          "already holds are refused (use the table's)")
    time_varying.add_fit_options(fit)
    fit.add_argument("--overwrite", action="store_true")
    fit.set_defaults(run=run_fit)


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict", help="score an RFM table with a saved model",
        description="Write p_alive, expected purchases and P(any purchase) over the horizon for "
                    "every customer; with --spend-model also the expected spend per purchase "
                    "and CLV over the horizon. The output's first column is the customer id.")
    predict.add_argument("model", help="transaction model file (.json from `clvlab fit`)")
    predict.add_argument("rfm", help="RFM table (.parquet or .csv)")
    predict.add_argument("--horizon", type=float, required=True, help="in the model's time unit")
    predict.add_argument("-o", "--output", required=True, help="output file (.parquet or .csv)")
    predict.add_argument("--spend-model", default=None, help="spend model file (gamma-gamma or lognormal), for CLV")
    predict.add_argument("--discount-rate", type=float, default=0.0,
                         help="per time unit, as a fraction (0.0015 a week is about 8%% a year)")
    predict.add_argument("--margin", type=float, default=1.0,
                         help="share of spend that is profit, as a fraction in (0, 1]")
    predict.add_argument("--customer-col", default=None,
                         help="customer id column (default: the one the file records, else "
                              "customer_id when present); a table whose ids are unknown is "
                              "refused")
    predict.add_argument("--time-unit", default=None,
                         help="time unit of the table's durations (h, D, W or M): required for "
                              "a table that does not record it (any CSV); must be the model's")
    predict.add_argument("--no-duration-check", action="store_true",
                         help="score a table whose durations look like another time unit than "
                              "the model's (see docs/guide/rfm.md: the time unit travels with "
                              "the table)")
    predict.add_argument("--attributes", default=None,
                         help="customer attributes for a model with covariates (.parquet or "
                              ".csv with the customer id column), joined to the table by "
                              "customer id; columns the table already holds are refused")
    predict.add_argument("--quantiles", default=None, metavar="LEVELS",
                         help="comma-separated levels in (0, 1), e.g. 0.05,0.5,0.95: each "
                              "customer's quantiles of purchases over the horizon and, with "
                              "--spend-model, of CLV (Monte Carlo), as `clvlab score` adds them")
    predict.add_argument("--interval-level", type=float, default=None, metavar="LEVEL",
                         help="each customer's central prediction interval of purchases at this "
                              "level (purchases_lower, purchases_upper), e.g. 0.9")
    predict.add_argument("--clv-draws", type=int, default=200,
                         help="simulated futures per customer for the CLV quantiles")
    predict.add_argument("--seed", type=int, default=0, help="seed of the CLV simulation")
    time_varying.add_panel_options(predict, scoring=True)
    predict.add_argument("--as-of", default=None,
                         help="with --covariates: the date the table's T is measured to (a "
                              "Parquet table of `clvlab rfm` records it; needed for a CSV table)")
    predict.add_argument("--overwrite", action="store_true")
    predict.set_defaults(run=run_predict)


def _add_backtest(commands, default_candidates, with_options: bool) -> None:
    backtest = commands.add_parser(
        "backtest", help="backtest models and baselines against held-out windows",
        description="At each cutoff, summarise the log up to it (customers acquired by then), fit "
                    "every candidate, predict the next --horizon time units and compare with what "
                    "happened (see clvlab.backtest). Prints the mean metrics over the cutoffs and "
                    "writes the tidy metrics table. A candidate that fails at a cutoff is "
                    "reported with the reason; the others go on.")
    if not with_options:
        return  # listed by `clvlab --help`; --candidates' help reads the backtests' defaults
    backtest.add_argument("transactions", nargs="+", help="CSV or Parquet files, or quoted globs")
    backtest.add_argument("--cutoffs", required=True, help="comma-separated dates, e.g. "
                                                           "1997-09-30,1997-12-31")
    backtest.add_argument("--horizon", type=float, required=True, help="in --time-unit")
    backtest.add_argument("--candidates", default=None,
                          help="comma-separated candidate names; commas inside brackets belong "
                               "to the candidate, e.g. 'pareto-nbd[Gender,Channel],bg-nbd"
                               "[Channel;dropout_form=b]' (default with --amount-col: "
                               f"{','.join(default_candidates(True))}; without amounts: "
                               f"{','.join(default_candidates(False))})")
    backtest.add_argument("-o", "--output", required=True, help="metrics table (.parquet or .csv)")
    backtest.add_argument("--cohorts-output", default=None,
                          help="also write the cohort LTV table here (.parquet or .csv)")
    add_log_options(backtest, amount_help="spend column (spend metrics need it)")
    backtest.add_argument("--attributes", default=None,
                          help="static customer attributes known at acquisition (.parquet or "
                               ".csv with a --customer-col column) that candidates with "
                               "covariates read, e.g. 'pareto-nbd[Gender,Channel]'")
    add_event_options(backtest)
    backtest.add_argument("--time-unit", default="W", help="h, D, W (default) or M")
    backtest.add_argument("--cohort-freq", default="M", help="acquisition cohorts: M, Q or Y")
    backtest.add_argument("--acquisition-cost", type=float, default=None,
                          help="cost of acquiring a customer; adds LTV:CAC to the cohort table")
    backtest.add_argument("--no-intervals", action="store_true",
                          help="do not score the candidates' predictive distributions (by "
                               "default: coverage of each customer's 50/80/90/95 %% interval, "
                               "log score and ranked probability score of holdout purchases, and "
                               "the coverage of the cohort total's 90 %% interval)")
    backtest.add_argument("--interval-draws", type=int, default=50,
                          help="parameter draws behind the cohort total's interval (default 50; "
                               "0 leaves it out)")
    backtest.add_argument("--overwrite", action="store_true")
    backtest.add_argument("--no-progress", action="store_true",
                          help="no progress bar (there is none unless standard error is a terminal)")
    backtest.set_defaults(run=run_backtest)


def run_fit(args: argparse.Namespace) -> int:
    import pandas as pd

    from clvlab.cli.tables import join_attribute_file, read_rfm_table
    from clvlab.models import registry

    entry = registry.by_name(args.model)
    time_varying.check_fit_model(args, entry)  # a panel for a model that takes none
    model_class = entry.model_class
    rfm = read_rfm_table(args.rfm, args.customer_col, args.time_unit,
                         needs_unit=model_class.requires_time_unit,
                         needs_ids=args.attributes is not None or args.covariates is not None)
    if args.attributes:
        rfm = join_attribute_file(rfm, args.attributes, args.customer_col)
    settings = _covariate_settings(args)
    paths = time_varying.fit_paths(args, rfm, settings)
    if args.dropout_form is not None:
        if not hasattr(model_class, "DROPOUT_FORMS"):
            raise ClvlabError(f"--dropout-form is a setting of bg-nbd and mbg-nbd, not of "
                              f"{args.model}")
        settings["dropout_form"] = args.dropout_form
    model = model_class(
        penalty=args.penalty, method=args.method, draws=args.draws, tune=args.tune,
        chains=args.chains, random_seed=args.seed, progressbar=sys.stderr.isatty(), **settings)
    if args.weights_col is not None and args.weights_col not in rfm.columns:
        raise ClvlabError(f"--weights-col {args.weights_col!r} is not a column of {args.rfm}")
    model.fit(rfm, weights=None if args.weights_col is None else rfm[args.weights_col],
              **({} if paths is None else {"covariate_paths": paths}))
    model.save(args.output, overwrite=args.overwrite)
    print(repr(model))
    with pd.option_context("display.float_format", "{:.6g}".format):
        print(model.summary().to_string())
    c = model.convergence_
    if args.method == "nuts":
        print(f"diagnostics: {c['divergences']} divergences; max r_hat {c['max_r_hat']:.3f}; "
              f"min bulk ESS {c['min_ess_bulk']:.0f}; converged: {c['converged']}")
    elif args.method == "mle":
        print(f"converged: {c['converged']}; AIC {model.aic_:.2f}; BIC {model.bic_:.2f}")
    else:  # AIC and BIC are maximum-likelihood criteria; a posterior point has none
        problems = f" ({'; '.join(c['problems'])})" if c.get("problems") else ""
        print(f"converged: {c['converged']}{problems}")
    print(f"wrote {args.output}")
    return 0


def _covariate_settings(args: argparse.Namespace) -> dict:
    """The model's covariate settings from the command line (none when none is given, so that
    a fit without covariates is built as before)."""
    settings = {}
    for name in ("purchase_covariates", "dropout_covariates", "spend_covariates",
                 "shared_covariates"):
        value = getattr(args, name)
        if value:
            settings[name] = [c.strip() for c in value.split(",") if c.strip()]
    if args.covariate_penalty:
        settings["covariate_penalty"] = args.covariate_penalty
    return settings


def run_predict(args: argparse.Namespace) -> int:
    from clvlab.cli.tables import (join_attribute_file, output_format, read_rfm_table,
                                   write_customer_table)
    from clvlab.core.atomic import atomic_output
    from clvlab.models import load_model, registry
    from clvlab.models.customer_scores import score_customers
    from clvlab.models.transaction import TransactionModel

    model = load_model(args.model)
    if registry.kind_of(model) == "spend":
        raise ClvlabError(f"{args.model} is a spend model; pass it with --spend-model and give a "
                          "transaction model first")
    if not isinstance(model, TransactionModel):
        raise ClvlabError(f"{args.model} holds a {type(model).__name__}; `clvlab predict` scores "
                          "the continuous-time models (BG/NBD, MBG/NBD, Pareto/NBD); use the "
                          "Python API for it")
    spend = load_model(args.spend_model) if args.spend_model else None
    if spend is not None:  # any spend model (Gamma-Gamma, log-normal), never another kind
        registry.check_kind(spend, "spend", "--spend-model")
    output = output_format(args.output)  # a bad name is refused before the work
    distribution = _distribution_options(args)
    rfm = read_rfm_table(args.rfm, args.customer_col, args.time_unit, needs_ids=True)
    if args.attributes:
        rfm = join_attribute_file(rfm, args.attributes, args.customer_col)
    unit = rfm.attrs["clvlab"]["time_unit"]
    along = time_varying.predict_frame(args, model, spend, rfm, unit, distribution)
    out = along if along is not None else score_customers(
        model, spend, None, rfm, horizon=args.horizon, discount_rate=args.discount_rate,
        margin=args.margin, time_unit=unit, check_durations=not args.no_duration_check)
    if along is None and (distribution["quantiles"] or distribution["interval_level"] is not None):
        import pandas as pd

        from clvlab.models.table_units import checked
        from clvlab.ops.scoring_intervals import distribution_columns

        with checked():  # score_customers checked the table's unit
            extra = distribution_columns(model, spend, rfm, args.horizon,
                                         discount_rate=args.discount_rate, margin=args.margin,
                                         **distribution)
        attrs = out.attrs
        out = pd.concat([out, extra], axis=1)
        out.attrs = attrs
    inputs = [args.rfm, args.model] + [p for p in (args.spend_model, args.attributes,
                                                   args.covariates, args.calendar) if p]
    with atomic_output(args.output, overwrite=args.overwrite, inputs=inputs) as temporary:
        write_customer_table(out, temporary, output,
                             {"time_unit": unit, "horizon": float(args.horizon)})
    print(f"wrote predictions for {len(out):,} customers (id column {out.index.name!r}) to "
          f"{args.output}: {horizon_text(args.horizon, unit)}")
    print("\n".join(column_notes(out.columns)))
    unvalued = out.attrs["clvlab"]["customers_unvalued"]
    if unvalued:
        print(f"{unvalued:,} customers whose repeat purchases were all free were valued at the "
              "population's mean spend")
    return 0


def _distribution_options(args: argparse.Namespace) -> dict:
    """``clvlab predict``'s distribution options, checked before the work."""
    from clvlab.ops.scoring_intervals import (check_clv_draws, check_interval_level, check_seed,
                                              parse_quantiles)

    return {"quantiles": parse_quantiles(args.quantiles),
            "interval_level": check_interval_level(args.interval_level),
            "clv_draws": check_clv_draws(args.clv_draws), "seed": check_seed(args.seed)}


def run_backtest(args: argparse.Namespace) -> int:
    import pandas as pd

    from clvlab.cli.tables import output_format, read_attributes
    from clvlab.core.atomic import atomic_output
    from clvlab.data.rfm_io import expand_paths
    from clvlab.evaluation import backtest, default_candidates
    from clvlab.evaluation.candidate_names import split_candidates

    files = expand_paths(args.transactions)
    outputs = [(args.output, "metrics")]
    if args.cohorts_output:
        outputs.append((args.cohorts_output, "cohorts"))
    formats = [output_format(path) for path, _ in outputs]  # refuse a bad name before the work
    for path, _ in outputs:
        if Path(path).exists() and not args.overwrite:
            raise ClvlabError(f"output {path} exists; pass --overwrite to replace it")
    candidates = default_candidates(args.amount_col is not None) if args.candidates is None \
        else split_candidates(args.candidates)
    attributes = None if args.attributes is None else read_attributes(
        args.attributes, args.customer_col, delimiter=args.delimiter, decimal=args.decimal)
    result = backtest(files, candidates,
                      [c.strip() for c in args.cutoffs.split(",") if c.strip()], args.horizon,
                      customer_col=args.customer_col, date_col=args.date_col,
                      amount_col=args.amount_col, time_unit=args.time_unit,
                      date_format=args.date_format, timezone=args.timezone,
                      cohort_freq=args.cohort_freq, acquisition_cost=args.acquisition_cost,
                      customer_attributes=attributes,
                      keep_predictions=False, progress=False if args.no_progress else None,
                      consent_col=args.consent_col, withdrawn=args.withdrawn,
                      delimiter=args.delimiter, decimal=args.decimal,
                      intervals=not args.no_intervals, interval_draws=args.interval_draws,
                      events=args.events, event_col=args.event_col,
                      event_value_col=args.event_value_col, quantity_col=args.quantity_col)
    if args.consent_col or args.withdrawn:
        print(f"left out {result.settings['customers_excluded']:,} customers who withdrew consent")
    inputs = files + ([args.attributes] if args.attributes else []) + \
        ([args.events] if args.events else [])
    for (path, table), fmt in zip(outputs, formats):
        frame: pd.DataFrame = getattr(result, table)
        with atomic_output(path, overwrite=args.overwrite, inputs=inputs) as temporary:
            if fmt == "parquet":
                frame.to_parquet(temporary, index=False)
            else:
                frame.to_csv(temporary, index=False)
    print(repr(result))
    failures = result.settings.get("failures") or []
    if failures and "failed" not in repr(result):
        print(f"{len(failures)} fit(s) failed and are not in the table:")
        for failure in failures:
            print(f"  {failure['candidate']} at cutoff {failure['cutoff']}: {failure['error']}")
    if not args.no_intervals:
        print("cov90: share of customers whose holdout purchases fell in their 90 % prediction "
              "interval (at least 0.9 for a calibrated count model: the ends count whole); log "
              "score: mean natural log of the predicted probability of the realised count "
              "(higher is better); total cov90: share of cutoffs whose total purchases fell in "
              "the 90 % interval of the total; n/a: a candidate without a distribution")
    print(f"wrote {len(result.metrics):,} metric rows to {args.output}")
    return 0
