"""Feedback a student can trust, measured on a corpus of answers (tests/corpus_answers.py).

190 wrong answers written as a struggling student would, and 51 correct but unusual ones
(exp(z - logsumexp(z)), np.logaddexp.reduce, einsum, np.add.at, long double, Rademacher
directions, lists for tuples...), each put into its exercise notebook and run through that
notebook's own visible and hidden test cells, in-process (one run for the whole module):

- no wrong answer passes the visible tests (the hidden ones are for other inputs, not other rules);
- no wrong answer is given a mistake it does not make; every answer listed with a mistake gets it
  (but for two whose first failing test cannot tell their mistake from another: one row, where
  1/n and 1/(N n) agree, so they get the generic report, which says "exactly 1/3 times");
- every correct answer passes every visible and hidden test;
- every catalogued mistake is named for some answer, and every "Read:" line points to the
  exercise's own chapter.

Before this corpus's fixes (issue 15) the same answers gave 73 named, 62 generic, 11 wrong
diagnoses, 44 wrong answers passing the visible tests (16 of them caught only by hidden ones)
and 4 correct answers rejected; now 166 named, 24 generic (22 with no catalogued mistake, the
2 undecidable ones), and none of the other three.
"""

from __future__ import annotations

import re

import pytest
from corpus_answers import CORRECT, WRONG
from feedback_corpus import KEY, classify, run

from softgrad.checks import MISTAKES, SECTIONS


@pytest.fixture(scope="module")
def results():
    return [(a, run(a)) for a in [*WRONG, *CORRECT]]


def _first(outcome) -> str:
    return next(iter(outcome.visible.values()), "")


def _where(a) -> str:
    return f"{a.assignment}/{a.cell}: {a.note}"


def test_no_wrong_answer_passes_the_visible_tests(results):
    passed = [_where(a) for a, o in results if not a.correct and not o.visible]
    assert not passed, "wrong answers that pass every visible test:\n  " + "\n  ".join(passed)


def test_no_wrong_diagnosis(results):
    bad = [
        f"{_where(a)}: expected {a.keys or 'generic'}, got {KEY.findall(_first(o))}"
        for a, o in results
        if not a.correct and classify(a, o) == "wrong diagnosis"
    ]
    assert not bad, "mistakes named that the answer does not make:\n  " + "\n  ".join(bad)


def test_every_answer_with_a_catalogued_mistake_gets_its_name(results):
    unnamed = [
        f"{_where(a)}: expected {a.keys}\n{_first(o)[:400]}"
        for a, o in results
        if a.keys and classify(a, o) != "named" and not a.undecidable
    ]
    assert not unnamed, "answers whose mistake was not named:\n" + "\n".join(unnamed)


def test_every_correct_answer_passes_visible_and_hidden_tests(results):
    rejected = [
        f"{_where(a)}: { ({**o.visible, **o.hidden}) }"
        for a, o in results
        if a.correct
        if o.visible or o.hidden
    ]
    assert not rejected, "correct answers rejected:\n  " + "\n  ".join(rejected)


def test_every_catalogued_mistake_is_named_for_some_answer(results):
    from test_checks_frameworks import FRAMEWORK_KEYS  # exercise 7's mistakes are tested there

    named = {k for a, o in results if not a.correct for k in KEY.findall(_first(o))}
    missing = set(MISTAKES) - named - FRAMEWORK_KEYS
    assert missing == set(), f"never named: {sorted(missing)}"


def test_every_read_line_points_to_the_exercises_own_chapter(results):
    chapter = {  # an exercise's number is its chapter's
        a.assignment: a.assignment[2:4] for a, _ in results
    }
    bad = []
    for a, o in results:
        for message in [*o.visible.values(), *o.hidden.values()]:
            for link in re.findall(r"Read: .*?: \.\./\.\./\.\./chapters/(\S+)", message):
                page, _, label = link.partition("#")
                if (
                    not page.startswith(chapter[a.assignment])
                    or SECTIONS[label][0] + ".ipynb" != page
                ):
                    bad.append(f"{_where(a)}: {link}")
    assert not bad, "Read: links outside the exercise's chapter:\n  " + "\n  ".join(bad)
