"""The picture behind "an interval for the mean vs a prediction interval": one CDNOW customer's
predictive distribution of purchases over the next 26 weeks (Pareto/NBD), with the expected
value, the 90 % interval of that expected value over the parameters' uncertainty, and the
90 % prediction interval of the count.

    .venv/bin/python benchmarks/figure_intervals.py intervals.png [--customer ID] [--draws 200]

Writes the PNG and prints the numbers it shows.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import clvlab  # noqa: E402
from clvlab.plotting.uncertainty import plot_predictive_distribution  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="the PNG to write")
    parser.add_argument("--customer", default=None,
                        help="a CDNOW customer id (default: the first with 4 repeat purchases)")
    parser.add_argument("--draws", type=int, default=200, help="parameter draws")
    parser.add_argument("--horizon", type=float, default=26.0, help="weeks after 1997-09-30")
    args = parser.parse_args()
    log = clvlab.datasets.load_cdnow(sample=True)
    rfm = clvlab.rfm_summary(log, amount_col="amount", time_unit="W",
                             calibration_end="1997-09-30", observation_end="1998-06-30")
    model = clvlab.ParetoNBD().fit(rfm)
    customer = (rfm[rfm["frequency"] == 4].index[0] if args.customer is None
                else rfm.index[rfm.index.astype(str) == str(args.customer)][0])
    fig, ax = plt.subplots(figsize=(8, 4.8))
    plot_predictive_distribution(model, rfm.loc[[customer]], args.horizon, ax=ax,
                                 parameter_draws=args.draws)
    fig.tight_layout()
    fig.savefig(args.path, dpi=120)
    print(f"customer {customer}: {dict(rfm.loc[customer, ['frequency', 'recency', 'T']].round(2))}")
    for text in ax.get_legend().get_texts():
        print(" ", text.get_text())
    print(f"wrote {args.path}")


if __name__ == "__main__":
    main()
