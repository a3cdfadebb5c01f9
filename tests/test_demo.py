"""The demo's sample class stays meaningful: every notebook edit applies, and only to cells a student may
change; every hand-in is made of files a re-run keeps. (Its graded outcomes: tests/test_end_to_end.py.)"""

from __future__ import annotations

import nbformat
import pytest

import course_config
from autograder import demo


@pytest.mark.parametrize("name", list(demo.SAMPLES))
def test_sample_edits_apply_to_answer_cells(name, tmp_path):
    a = course_config.assignment(name)
    for sample in demo.SAMPLES[name]:
        demo.make_rerun(sample, a, tmp_path)  # raises if an edit no longer applies
        nb = nbformat.read(tmp_path / sample.student / a.name / a.notebook, as_version=4)
        cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
        for grade_id, _, new in sample.edits:
            # a change to a read-only cell is undone when the grader re-executes the notebook
            assert not cells[grade_id].metadata["nbgrader"].get("locked"), (sample.student, grade_id)
            assert new in cells[grade_id].source


def test_every_assignment_is_re_executed_and_has_a_class():
    """The README's promise: a notebook per assignment re-run, each class graded from saved files."""
    assert set(demo.RERUNS) == set(demo.HANDINS) == set(course_config.ASSIGNMENTS)
    for name, reruns in demo.RERUNS.items():
        assert any(r.student == "ada" and r.expect == "full" for r in reruns), name
        expects = {h.expect for h in demo.HANDINS[name]}
        assert {"full", "partial"} <= expects, (name, expects)
        for handin in demo.HANDINS[name]:
            if isinstance(handin.files, demo.OtherModel):  # made from a model another re-run keeps
                assert handin.files.assignment in demo.RERUNS


def test_hand_ins_are_made_from_the_kept_files_only(tmp_path):
    """Each hand-in is the release notebook and files derived from what the re-runs kept (stand-ins here)."""
    kept = tmp_path / "kept"
    for name in demo.HANDINS:
        (kept / name).mkdir(parents=True)
        for spec in course_config.assignment(name).models:
            (kept / name / spec.file).write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    for name, handins in demo.HANDINS.items():
        a = course_config.assignment(name)
        for handin in handins:
            if handin.files is demo.without_softmax:
                continue  # needs a real model's config: graded in test_end_to_end
            demo.make_handin(handin, a, kept, tmp_path / "class")
            folder = tmp_path / "class" / handin.student / name
            assert (folder / a.notebook).is_file()
            files = {p.name for p in folder.iterdir()} - {a.notebook}
            assert files <= {spec.file for spec in a.models}, (name, handin.student, files)
