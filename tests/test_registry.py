"""The model registry is the one place that names models: every choice of model comes from it."""

import dataclasses

import numpy as np
import pytest

import clvlab
from clvlab import ClvlabError
from clvlab.cli.app import _parser
from clvlab.data import simulate
from clvlab.evaluation.candidate_names import CANDIDATE_NAMES, make_candidate
from clvlab.models import registry
from clvlab.models.bg_nbd import BetaGeo
from clvlab.models.checks import frequency_ppc
from clvlab.ops import experiments


def test_every_public_model_is_registered_once_with_its_columns():
    public = {clvlab.BetaGeo, clvlab.ModifiedBetaGeo, clvlab.ParetoNBD, clvlab.GammaGamma,
              clvlab.LogNormalSpend, clvlab.BetaGeoBetaBinom, clvlab.ShiftedBetaGeo}
    assert {entry.model_class for entry in registry.MODELS} == public
    assert len(registry.names()) == len(set(registry.names())) == len(public)
    for entry in registry.MODELS:
        assert entry.columns and entry.columns == entry.model_class.columns
        assert registry.by_name(entry.name) is entry
        assert registry.entry_for(entry.model_class()) is entry


def test_mbg_nbd_is_not_taken_for_its_parent_class():
    assert registry.entry_for(clvlab.ModifiedBetaGeo).name == "mbg-nbd"
    assert registry.entry_for(clvlab.BetaGeo).name == "bg-nbd"
    assert registry.entry_for(clvlab.ModifiedBetaGeo).simulator is simulate.mbg_nbd


def test_unknown_names_list_the_registered_ones():
    with pytest.raises(ClvlabError, match=r"unknown transaction model 'gamma-gamma'.*'mbg-nbd'"):
        registry.by_name("gamma-gamma", kind="transaction")
    with pytest.raises(ClvlabError, match="not a registered clvlab model"):
        registry.entry_for(type("Mine", (BetaGeo,), {}))


@pytest.mark.parametrize("name", registry.names("transaction"))
def test_every_transaction_model_is_a_candidate_alone_with_spend_and_with_churn(name):
    cls = registry.by_name(name).model_class
    alone, with_spend = make_candidate(name), make_candidate(f"{name}+gamma-gamma")
    adjusted = make_candidate(f"{name}+gamma-gamma+churn-adjuster")
    assert type(alone.transaction_model) is cls and alone.name == name
    assert with_spend.name == f"{name} + gamma-gamma"
    assert type(adjusted).__name__ == "ChurnAdjustedCandidate"
    assert type(adjusted.transaction_model) is cls
    assert name in CANDIDATE_NAMES


def test_the_mbg_nbd_posterior_predictive_check_simulates_mbg_nbd():
    """MBG/NBD had no frequency simulator when simulators were keyed by class name."""
    rfm = simulate.mbg_nbd(3_000, r=0.5, alpha=5.0, a=0.8, b=2.5, T=30.0, seed=2)
    model = clvlab.ModifiedBetaGeo().fit(rfm[["frequency", "recency", "T"]], time_unit="W")
    ppc = frequency_ppc(model, rfm, n_draws=50, seed=2)
    inside = (ppc["3%"] <= ppc["observed"]) & (ppc["observed"] <= ppc["97%"])
    assert inside.sum() >= len(ppc) - 1, ppc
    # BG/NBD's process at the same parameters has no dropout at the first purchase: far fewer
    # customers without repeats than MBG/NBD's (and the data's)
    bg = simulate.bg_nbd(3_000, T=30.0, seed=3, **model.params_.to_dict())
    assert (bg["frequency"] == 0).sum() < ppc.loc["0", "3%"] - 100
    assert clvlab.bayes.frequency_ppc is frequency_ppc


def test_a_model_added_to_the_registry_reaches_every_choice(monkeypatch):
    """Adding a model touches its module and one registry line: here a registered copy of
    BG/NBD becomes a `clvlab fit --model` choice, a backtest candidate and an experiment model."""
    class CopyOfBetaGeo(BetaGeo):
        pass

    extra = registry.RegisteredModel("copy-nbd", CopyOfBetaGeo, "transaction", simulate.bg_nbd)
    monkeypatch.setattr(registry, "MODELS", (*registry.MODELS, extra))
    fit_parser = _parser()._subparsers._group_actions[0].choices["fit"]
    model_option = next(a for a in fit_parser._actions if "--model" in a.option_strings)
    assert "copy-nbd" in model_option.choices
    candidate = make_candidate("copy-nbd+gamma-gamma")
    assert type(candidate.transaction_model) is CopyOfBetaGeo
    assert candidate.name == "copy-nbd + gamma-gamma"
    assert experiments._candidates({"candidates": ["copy-nbd", "historical-average"],
                                     "churn_adjuster": True})[-1] == "copy-nbd+churn-adjuster"


def test_registry_entries_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        registry.MODELS[0].name = "x"
    assert np.all([entry.kind in registry.KINDS for entry in registry.MODELS])
