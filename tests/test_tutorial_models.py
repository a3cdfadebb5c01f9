"""Fair to every real student: models built from the recipes students copy, under the names their tools give
them, are graded as the models they are (tests/tutorial_models.py), and the check before hand-in predicts the
grader's points for every check it can judge."""

from __future__ import annotations

import shutil

import pytest

import course_config
from autograder import batch
from autograder.course_check import check_saved_models, facts_of
from autograder.datasets.susy_sim import simulate
from tests.conftest import shared_folder
from tests.tutorial_models import CASES, build

PROFILE = "quick"  # the SUSY events of the quick profile are simulated, so graded offline; MNIST is the same data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, mnist):
    return shared_folder(tmp_path_factory, "tutorial-models", lambda d: build(d, mnist))


@pytest.fixture(scope="module")
def graded(corpus, tmp_path_factory):
    """Every case graded from its saved files, one batch per assignment, as a TA grades a class."""
    results = {}
    for name in sorted({c.assignment for c in CASES}):
        root = tmp_path_factory.mktemp(f"submitted-{name}")
        for case in CASES:
            if case.assignment == name:
                shutil.copytree(corpus / case.name, root / case.name / name)  # with the files' times
        for result in batch.grade(name, root, tmp_path_factory.mktemp(f"out-{name}"), profile_name=PROFILE).results:
            results[result.student] = result
    return results


def validation(case):
    """The validation split the notebook holds: MNIST's last 6,000 training images; for SUSY (quick), simulated events
    as the notebook's quick run reads them."""
    a = course_config.assignment(case.assignment)
    if a.dataset == "susy":
        return simulate(20_000, seed=5)
    from autograder.course_check import validation_data

    return validation_data(facts_of(a, PROFILE))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_graded_as_the_model_it_is(graded, case):
    result = graded[case.name]
    checks = {c.id: c for c in result.checks}
    for check_id, points in case.points.items():
        assert checks[check_id].score == points, f"{case.recipe}: {check_id}: {checks[check_id].output}"
    for where, text in case.says.items():
        said = result.output if where == "notes" else checks[where].output
        assert text in said, f"{case.recipe}: {where}: {said}"
    everything = "\n".join([result.output] + [c.output for c in checks.values()])
    for text in case.never:
        assert text not in everything, f"{case.recipe}: a false message ({text!r}): {everything}"
    assert "internal grader error" not in everything
    for c in checks.values():  # each message about a file once per check
        for sentence in {s for s in c.output.split("; ") if len(s) > 30}:
            assert c.output.count(sentence) == 1, c.output


def test_optimizer_state_is_not_counted_as_parameters(graded):
    model = graded["tf_quickstart_softmax_wrapper"].extra["models"]["model"]
    assert model["parameters"] == 407_050
    assert model["summary"] == "Flatten -> Dense(512, relu) -> Dropout -> Dense(10, linear) -> Softmax"


@pytest.fixture(scope="module")
def predicted(corpus):
    """The check before hand-in of every case, as the student runs it: {case: (its reports, what it printed)}."""
    out = {}
    for case in CASES:
        a = course_config.assignment(case.assignment)
        x_val, y_val = validation(case)
        said = []
        reports = check_saved_models(facts_of(a, PROFILE), x_val=x_val, y_val=y_val, folder=corpus / case.name,
                                     out=said.append)
        out[case.name] = reports, "\n".join(said)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_check_before_hand_in_predicts_the_grader(predicted, graded, case):
    """For every check it judges, the points the check before hand-in predicts are the grader's, unless the
    validation figure is within its uncertainty of a tier (it says so); it never says "passes" of a check it did
    not judge, and it speaks in plain words."""
    reports, said = predicted[case.name]
    verdicts = reports.verdicts()
    assert set(verdicts) == {c.id for c in course_config.assignment(case.assignment).checks}, said
    grader = {c.id: c.score for c in graded[case.name].checks}
    for check_id, v in verdicts.items():
        assert v["judged"], f"{check_id} not judged: {v['message']}"
        if v.get("borderline"):
            assert "may fall on either side" in v["message"]
            continue
        assert v["points"] == pytest.approx(grader[check_id]), (check_id, said, graded[case.name].checks)
    assert "None" not in said and "{" not in said  # plain words, no raw dicts
    assert ("Every graded check passes" in said) == all(v["points"] == v["of"] for v in verdicts.values())
    assert repr(reports) in said  # what a notebook shows as the cell's value is the verdict, in words


def test_the_check_judges_almost_every_check(predicted):
    """Figures too close to a tier to call are the exception: the check compares at least nine in ten."""
    verdicts = [v for reports, _ in predicted.values() for v in reports.verdicts().values()]
    compared = [v for v in verdicts if v["judged"] and not v.get("borderline")]
    assert len(compared) >= 0.9 * len(verdicts), (len(compared), len(verdicts))
