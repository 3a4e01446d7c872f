"""The machine-learning challengers' files, and the input rules they share.

A challenger is saved as a JSON file (its settings, feature names, learned numbers, a schema
version and its kind) plus one skops file per scikit-learn part beside it
(``<name>.<part>.skops``, e.g. ``ziln.json`` and ``ziln.activity.skops``), as
:meth:`clvlab.churn.ChurnAdjuster.save` does. Loading never runs code from either: the JSON is
data, and a skops file may hold only the types skops trusts by default, those the default
challengers use (``TRUSTED_TYPES``, read off ``skops.io.get_untrusted_types`` for them) and
those the caller names in ``trusted``; anything else is refused with the types named. Every
file is written atomically (:func:`clvlab.core.atomic.atomic_output`), the parts first and the
JSON last, which records each part's SHA-256: a JSON never pairs with parts of another save.

:class:`ChallengerBase` is what the challengers share: ``save``/``load``, the checks of ``X``
and of the targets, the thread limit and the ``repr``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from clvlab.core.atomic import atomic_output
from clvlab.core.errors import ClvlabError, DataValidationError, example_row

__all__ = ["ChallengerBase", "TRUSTED_TYPES", "SCHEMA_VERSION", "save_challenger",
           "load_challenger", "check_features", "check_counts", "check_spend", "check_levels",
           "whole_setting", "positive_setting", "load_skops"]

SCHEMA_VERSION = 1
READABLE_VERSIONS = (1,)

# what the default classifiers' and challengers' skops files hold beyond skops's own trusted
# defaults, read off skops.io.get_untrusted_types for them (tests/test_challengers.py checks
# the list against it): the calibrated classifier's parts and the trees of every gradient
# boosting model; with categorical features the boosting keeps functools.partial(check_array,
# ...), and skops loads a partial only of a function it trusts, here scikit-learn's input
# check (without it an adjuster with a text attribute could not be loaded again). None runs code.
TRUSTED_TYPES = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.StratifiedKFold",
    "functools.partial",
    "sklearn.utils.validation.check_array",
)


def load_skops(path: Path, trusted: list[str] | None = None):
    """A scikit-learn part from a skops file that holds only the types skops trusts by
    default, ``TRUSTED_TYPES`` and those named in ``trusted`` (the churn adjuster's classifier,
    a challenger's parts); anything else, or an unreadable file, is a ClvlabError."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops reads a zip archive: BadZipFile, KeyError, JSON errors
        raise ClvlabError(f"{path} is not a readable skops file (corrupt or truncated?): "
                          f"{type(exc).__name__}: {exc}") from None
    refused = [t for t in untrusted if t not in set(TRUSTED_TYPES) | set(trusted or ())]
    if refused:
        raise ClvlabError(f"{path} holds types clvlab does not trust: {refused}; if you trust "
                          "the file, pass them as trusted=[...]")
    try:
        return sio.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise ClvlabError(f"{path} could not be loaded (corrupt?): "
                          f"{type(exc).__name__}: {exc}") from None


def check_features(X: Any, names: list[str] | None = None,
                   categorical: list[str] | None = None) -> pd.DataFrame:
    """``X`` as the challengers take it: a DataFrame of numbers, booleans and pandas
    categoricals, NaN allowed (gradient boosting sends missing values down a learned branch),
    infinities not. With ``names`` (at predict), the columns must be those seen in ``fit``,
    in any order (returned in fit's order), and ``categorical`` the ones that were categorical.

    Raises
    ------
    ClvlabError
        for anything but a DataFrame, an empty one, and columns beyond those seen in ``fit``.
    DataValidationError
        naming the column: missing, of another type, or holding an infinity (with its row).
    """
    if not isinstance(X, pd.DataFrame):
        raise ClvlabError(f"X must be a DataFrame of features (clvlab.churn.feature_frame), not "
                          f"{type(X).__name__}")
    if len(X) == 0:
        raise ClvlabError("X has no rows")
    if names is not None:
        missing = [c for c in names if c not in X.columns]
        if missing:
            raise DataValidationError(missing[0], "is missing from X (the challenger was fitted "
                                                  f"with the columns {names})")
        extra = [str(c) for c in X.columns if c not in names]
        if extra:
            raise ClvlabError(f"X has the columns {extra} that the challenger was not fitted "
                              f"with (it was fitted with {names})")
        X = X[names]
    for column in X.columns:
        dtype = X[column].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            if categorical is not None and column not in categorical:
                raise DataValidationError(column, "is categorical but was a number in fit")
            continue
        if categorical is not None and column in categorical:
            raise DataValidationError(column, f"was categorical in fit but is {dtype} here")
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise DataValidationError(column, f"features must be numbers, booleans or pandas "
                                              f"categoricals (dtype is {dtype}); convert text "
                                              "with .astype('category')")
        values = X[column].to_numpy(np.float64, na_value=np.nan)
        infinite = np.isinf(values)
        if infinite.any():
            position = int(np.flatnonzero(infinite)[0])
            raise DataValidationError(column, "features may be missing (NaN) but not infinite",
                                      example_row(X, position))
    return X


def _numbers(values: Any, n: int, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ClvlabError(f"{name} must be numbers, one a row of X ({n})") from None
    if array.shape != (n,):
        raise ClvlabError(f"{name} must hold one value a row of X ({n} rows), got shape "
                          f"{array.shape}")
    return array


def check_counts(purchases: Any, n: int, name: str = "purchases") -> np.ndarray:
    """Each row's purchases in the horizon: whole numbers >= 0, one a row of ``X``."""
    counts = _numbers(purchases, n, name)
    bad = ~np.isfinite(counts) | (counts < 0) | (counts != np.round(counts))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataValidationError(name, "purchases are counts: whole numbers >= 0",
                                  {"<row>": i, name: counts[i]})
    return counts


def check_spend(spend: Any, purchases: np.ndarray, name: str = "spend") -> np.ndarray:
    """Each row's spend in the horizon: finite, >= 0, and 0 where there was no purchase (a
    buyer's spend may be 0: refunds, free orders)."""
    values = _numbers(spend, len(purchases), name)
    bad = ~np.isfinite(values) | (values < 0)
    rule = "spend must be finite and >= 0"
    if not bad.any():
        bad, rule = (values > 0) & (purchases == 0), "spend must be 0 where purchases are 0"
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataValidationError(name, rule, {"<row>": i, name: values[i],
                                               "purchases": purchases[i]})
    return values


def check_levels(quantiles: Any) -> np.ndarray:
    """Quantile levels: one number or a list, each in (0, 1)."""
    try:
        levels = np.atleast_1d(np.asarray(quantiles, dtype=np.float64))
    except (TypeError, ValueError):
        levels = np.full(0, np.nan)
    if isinstance(quantiles, (str, bytes)) or levels.ndim != 1 or levels.size == 0 \
            or not np.all((levels > 0) & (levels < 1)):
        raise ClvlabError(f"quantiles must be levels in (0, 1), e.g. (0.05, 0.5, 0.95), got "
                          f"{quantiles!r}")
    return levels


def whole_setting(value: Any, name: str, least: int) -> int:
    """A setting that is a whole number >= ``least`` (checked in ``fit``, not ``__init__``)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ClvlabError(f"{name} must be a whole number >= {least}, got {value!r}")
    return int(value)


def positive_setting(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not math.isfinite(value) or value <= 0:
        raise ClvlabError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


class ChallengerBase(BaseEstimator):
    """What the challengers share (not an estimator of its own). A subclass defines
    ``_file_state()`` -> ``{"learned": {...JSON...}, "parts": {name: estimator}}`` and
    ``_restore(learned, parts)``, and sets ``feature_names_in_``, ``categorical_`` and
    ``training_`` (a list of dicts, one a part, for ``summary``) in ``fit``."""

    def _threads(self):
        from threadpoolctl import threadpool_limits

        if self.n_threads is None:
            return contextlib.nullcontext()
        return threadpool_limits(limits=whole_setting(self.n_threads, "n_threads", 1), user_api="openmp")

    def _check_fit_input(self, X: Any) -> pd.DataFrame:
        X = check_features(X)
        positive_setting(self.horizon, "horizon")
        labelled = (X.attrs.get("clvlab") or {}).get("label_horizon")
        if labelled is not None and not np.isclose(float(labelled), float(self.horizon)):
            raise ClvlabError(f"the targets were made for a horizon of {float(labelled):g} but "
                              f"this challenger predicts a horizon of {float(self.horizon):g}")
        self.feature_names_in_ = np.array([str(c) for c in X.columns], dtype=object)
        if len(set(self.feature_names_in_)) != X.shape[1]:
            raise ClvlabError(f"X has repeated column names: {list(X.columns)}")
        self.n_features_in_ = X.shape[1]
        self.categorical_ = [str(c) for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        return X

    def _check_predict_input(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "training_")
        return check_features(X, list(self.feature_names_in_), self.categorical_)

    def summary(self) -> pd.DataFrame:
        """The fitted parts, one row each.

        What each predicts, on how many training customers, its in-sample
        mean deviance (binomial for the activity classifier, squared error of the log for the
        log-normal parts, Poisson for the Poisson ones) and, for log-normal parts, sigma.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``part``.
        """
        check_is_fitted(self, "training_")
        return pd.DataFrame(self.training_).set_index("part")

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        text = super().__repr__(N_CHAR_MAX)
        if getattr(self, "training_", None) is None:
            return text
        parts = ", ".join(f"{row['part']} on {row['customers']}" for row in self.training_)
        return f"{text}  # fitted: {parts} customers"

    def save(self, path: str | Path, overwrite: bool = True) -> None:
        """Write the JSON file at ``path`` and the skops files of the parts beside it.

        Parameters
        ----------
        path : str or pathlib.Path
            The JSON file; each part goes to ``<name>.<part>.skops`` beside it.
        overwrite : bool, default True
            Replace existing files; False raises ClvlabError where one exists.
        """
        save_challenger(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, trusted: list[str] | None = None):
        """Read a challenger of this class saved with :meth:`save`.

        Parameters
        ----------
        path : str or pathlib.Path
            The JSON file (the parts' skops files beside it).
        trusted : list of str, optional
            Types beyond those clvlab trusts that the caller trusts in its skops files.

        Returns
        -------
        ZILNChallenger or GBMPoissonChallenger
            Fitted, as saved (the class it is called on).

        Raises
        ------
        ClvlabError
            Where the file is unreadable or of another class, or a part's file is missing,
            changed or holds an untrusted type.
        """
        return load_challenger(path, cls, trusted=trusted)


def _part_path(path: Path, part: str) -> Path:
    name = path.name[:-5] if path.name.endswith(".json") else path.name
    return path.with_name(f"{name}.{part}.skops")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _json_safe(value: Any) -> Any:
    """NaN (unknown) as JSON's null; NumPy numbers as Python's."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def save_challenger(estimator: ChallengerBase, path: str | Path, overwrite: bool = True,
                    extra: dict[str, Any] | None = None) -> None:
    """Save a fitted challenger: JSON at ``path``, ``<name>.<part>.skops`` beside it. ``extra``:
    more JSON keys (a registered challenger's candidate name), read back from the file.

    Raises
    ------
    ClvlabError
        for an unfitted challenger, a setting that JSON cannot hold, and an existing file with
        ``overwrite=False``.
    """
    import skops.io as sio

    from clvlab.core.version import __version__

    check_is_fitted(estimator, "training_")
    path = Path(path)
    settings = estimator.get_params(deep=False)
    try:
        json.dumps(settings, allow_nan=False)
    except (TypeError, ValueError):
        raise ClvlabError(f"cannot save {type(estimator).__name__}: its settings must be numbers, "
                          f"text or None to be written as JSON, got {settings}") from None
    state = estimator._file_state()
    parts = {}
    for name, part in state["parts"].items():
        target = _part_path(path, name)
        with atomic_output(target, overwrite=overwrite) as temporary:
            sio.dump(part, temporary)
        parts[name] = {"file": target.name, "sha256": _digest(target)}
    payload = {"schema_version": SCHEMA_VERSION, "kind": type(estimator).__name__,
               "clvlab_version": __version__, "settings": settings,
               "feature_names": [str(c) for c in estimator.feature_names_in_],
               "categorical": list(estimator.categorical_),
               "training": _json_safe(estimator.training_), "learned": _json_safe(state["learned"]),
               "parts": parts, **(extra or {})}
    with atomic_output(path, overwrite=overwrite) as temporary:
        Path(temporary).write_text(json.dumps(payload, indent=2, allow_nan=False))


def load_challenger(path: str | Path, cls: type, trusted: list[str] | None = None):
    """Read a challenger of class ``cls`` saved by :func:`save_challenger`.

    Raises
    ------
    ClvlabError
        for an unreadable file, one of another kind or schema version, a missing or altered
        part file, and a part holding types that are not trusted (named in the message).
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise ClvlabError(f"{path}: not a readable {cls.__name__} file ({exc})") from None
    if payload.get("kind") != cls.__name__:
        raise ClvlabError(f"{path}: a file of kind {payload.get('kind')!r}, not a {cls.__name__} "
                          f"file; load it with its own class")
    if payload.get("schema_version") not in READABLE_VERSIONS:
        raise ClvlabError(f"{path}: schema version {payload.get('schema_version')!r}; this clvlab "
                          f"reads {cls.__name__} files of version "
                          f"{', '.join(map(str, READABLE_VERSIONS))}")
    parts = {}
    for name, entry in payload["parts"].items():
        part_path = path.with_name(str(entry["file"]))
        if not part_path.is_file():
            raise ClvlabError(f"{path}: its part file {part_path} is missing (saved beside it)")
        if _digest(part_path) != entry["sha256"]:
            raise ClvlabError(f"{part_path} is not the file saved with {path} (its SHA-256 "
                              "differs): save the challenger again")
        parts[name] = load_skops(part_path, trusted)
    estimator = cls(**payload["settings"])
    estimator.feature_names_in_ = np.array(payload["feature_names"], dtype=object)
    estimator.n_features_in_ = len(estimator.feature_names_in_)
    estimator.categorical_ = list(payload["categorical"])
    estimator.training_ = [{k: np.nan if v is None else v for k, v in row.items()}
                           for row in payload["training"]]
    estimator._restore(payload["learned"], parts)
    return estimator
