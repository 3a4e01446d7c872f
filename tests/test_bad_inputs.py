"""The bad-input catalogue (docs/bad-inputs.md): every case raises a ClvlabError whose message
names the column or option, the rule broken and the offending value, and the page shows exactly
today's cases and messages."""

from __future__ import annotations

import warnings

import pytest

import bad_inputs


def test_the_catalogue_has_at_least_30_cases_with_distinct_titles():
    titles = [title for _, title, _, _ in bad_inputs.CASES]
    assert len(titles) >= 30 and len(set(titles)) == len(titles)


@pytest.mark.parametrize("group, title, code, names", bad_inputs.CASES,
                         ids=[c[1] for c in bad_inputs.CASES])
def test_each_bad_input_names_its_column_rule_and_value(group, title, code, names):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        message = bad_inputs.run_case(code)
    missing = [part for part in names if part not in message]
    assert not missing, f"the message does not name {missing}: {message}"
    assert len(message.splitlines()) == 1  # one sentence, not an engine's dump


def test_every_case_says_what_its_message_must_name():
    # at least the column or option and the rule: two facts a user needs to fix the input
    assert all(len(names) >= 2 for _, _, _, names in bad_inputs.CASES)


def test_the_documentation_shows_todays_messages():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = bad_inputs.render()
    assert bad_inputs.DOC.read_text() == page, (
        "docs/bad-inputs.md is out of date: regenerate it with .venv/bin/python tests/bad_inputs.py")
