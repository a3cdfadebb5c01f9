"""The demo's sample class stays meaningful: every edit applies, and only to cells a student may change."""

from __future__ import annotations

import nbformat
import pytest

import course_config
from autograder import demo


@pytest.mark.parametrize("name", list(demo.SAMPLES))
def test_sample_edits_apply_to_answer_cells(name, tmp_path):
    a = course_config.assignment(name)
    for sample in demo.SAMPLES[name]:
        demo.make_sample(sample, a, tmp_path)  # raises if an edit no longer applies
        nb = nbformat.read(tmp_path / sample.student / a.name / a.notebook, as_version=4)
        cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
        for grade_id, _, new in sample.edits:
            # a change to a read-only cell is undone when the grader re-executes the notebook
            assert not cells[grade_id].metadata["nbgrader"].get("locked"), (sample.student, grade_id)
            assert new in cells[grade_id].source
