"""The bad-input catalogue (docs/bad-inputs.md): every case raises a ClvlabError with a message
that says what is wrong, and the page shows exactly today's cases and messages."""

from __future__ import annotations

import warnings

import pytest

import bad_inputs


def test_the_catalogue_has_at_least_30_cases_with_distinct_titles():
    titles = [title for _, title, _ in bad_inputs.CASES]
    assert len(titles) >= 30 and len(set(titles)) == len(titles)


@pytest.mark.parametrize("group, title, code", bad_inputs.CASES, ids=[c[1] for c in bad_inputs.CASES])
def test_each_bad_input_gets_a_clvlab_error(group, title, code):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        message = bad_inputs.run_case(code)
    assert len(message) > 20  # a sentence, not a bare exception name


def test_the_documentation_shows_todays_messages():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = bad_inputs.render()
    assert bad_inputs.DOC.read_text() == page, (
        "docs/bad-inputs.md is out of date: regenerate it with .venv/bin/python tests/bad_inputs.py")
