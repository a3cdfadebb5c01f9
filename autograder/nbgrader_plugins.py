"""nbgrader's buttons, done by the kit: the pieces the course's ``nbgrader_config.py`` plugs into nbgrader.

A course that uses nbgrader keeps its habits (formgrader's Generate, Autograde and Feedback buttons,
the JupyterLab Validate button, ``nbgrader export``) and every grade is still the kit's:

- :class:`SyncCourseCells` (Generate): before nbgrader builds a release or the solutions, the notebook's
  generated cells (the helper cell, the check before hand-in, one graded cell per check) are written
  from course_config, as ``autograder release`` writes them: both give the same release.
- :class:`GradeWithKit` (Autograde, in place of nbgrader's Execute): the submission is graded through the
  kit's one path (:func:`autograder.batch.grade_assignments`, saved models in the sandbox unless the
  course re-executes), into the same results folder as ``autograder grade``; each ``check_<id>`` cell
  gets the kit's score (nbgrader's partial credit) and message, and the notebook carries the grading
  record. nbgrader's own SaveAutoGrades then records the scores; :class:`MarkFlagged` marks the checks the
  kit flagged for a TA, as ``autograder grade --gradebook`` does.
- :class:`FeedbackPage` (Feedback): ``nbgrader generate_feedback`` writes the kit's feedback page from the
  record, with the gradebook's scores (a TA's manual score included), never nbgrader's notebook render.
- :class:`CheckScoresExport` (``nbgrader export``): nbgrader's CSV with a column per check.

Validate needs nothing here: the notebook's helper cell lets only the check cells run under
``nbgrader validate`` (see :mod:`autograder.release`). :func:`configure` sets all of it on a config.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from nbconvert.exporters import Exporter
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader import preprocessors as pp
from nbgrader.plugins.export import CsvExportPlugin
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Unicode

import course_config
from autograder import notebook


def configure(c) -> None:
    """Set the course's nbgrader configuration on ``c`` (``get_config()`` in an ``nbgrader_config.py``)."""
    # nbgrader runs `alembic` by name: the scripts of the Python that runs nbgrader come first on PATH, so
    # `.venv/bin/nbgrader` works from a shell where the venv is not activated (and never half-builds a release).
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    c.CourseDirectory.release_directory = "release"
    c.CourseDirectory.solution_directory = "solutions"
    # nbgrader's own pipelines, with the kit's steps in them. Solutions are not executed: outputs would differ
    # from run to run (and training takes minutes).
    c.GenerateAssignment.preprocessors = [
        SyncCourseCells, pp.IncludeHeaderFooter, pp.InstantiateTests, pp.LockCells, pp.ClearSolutions, pp.ClearOutput,
        pp.CheckCellMetadata, pp.ComputeChecksums, pp.SaveCells, pp.ClearHiddenTests, pp.ClearMarkScheme,
        pp.ComputeChecksums, pp.CheckCellMetadata]
    c.GenerateSolution.preprocessors = [SyncCourseCells, pp.IncludeHeaderFooter, pp.LockCells, pp.ClearOutput,
                                        pp.ClearHiddenTests, pp.ClearMarkScheme]
    c.Autograde.autograde_preprocessors = [GradeWithKit, pp.IgnorePattern, ClearMetadataPreprocessor, pp.LimitOutput,
                                           pp.SaveAutoGrades, MarkFlagged, pp.AssignLatePenalties,
                                           pp.CheckCellMetadata]
    c.GenerateFeedback.exporter_class = FeedbackPage
    c.ExportApp.plugin_class = CheckScoresExport


def _assignment(resources) -> course_config.Assignment | None:
    """The course_config assignment nbgrader is working on, or None for one the kit does not know."""
    name = (resources.get("nbgrader") or {}).get("assignment")
    return course_config.ASSIGNMENTS.get(name)


# ------------------------------------------------------------------------------------------------ Generate
class SyncCourseCells(NbGraderPreprocessor):
    """Write the notebook's generated cells from course_config, as ``autograder release`` does."""

    def preprocess(self, nb, resources):
        assignment = _assignment(resources)
        if assignment is None or Path(assignment.notebook).stem != resources["nbgrader"].get("notebook"):
            return nb, resources
        from autograder.release import with_grading_cells

        return with_grading_cells(nb, assignment), resources


# ------------------------------------------------------------------------------------------------ Autograde
class GradeWithKit(NbGraderPreprocessor):
    """Grade the submission with the kit instead of running the notebook in nbgrader's process.

    The student's files are graded where nbgrader collected them (``submitted/<student>/<assignment>/``)
    by the kit's one path, in the sandbox, into ``results_dir`` (the folder ``autograder grade --out``
    writes; a result whose submission and grader have not changed is reused, as there). An assignment
    course_config does not know is run by nbgrader's own Execute.
    """

    execute = Bool(False, help="re-run each notebook in the sandbox (autograder grade --execute) instead of "
                               "grading the models it saved").tag(config=True)
    profile = Unicode(course_config.DEFAULT_PROFILE, help="the course profile (thresholds, limits)").tag(config=True)
    results_dir = Unicode("graded", help="where the kit's results go (relative: to the course folder); "
                                         "the same folder as `autograder grade --out`").tag(config=True)
    backend = Unicode("", help="the sandbox backend (default: the best this machine has)").tag(config=True)

    def _course(self):
        converter = getattr(self.parent, "parent", None)
        return getattr(converter, "coursedir", None)

    def preprocess(self, nb, resources):
        assignment = _assignment(resources)
        if assignment is None:
            from nbgrader.preprocessors import Execute

            return Execute(parent=self.parent).preprocess(nb, resources)
        from autograder.batch import grade_assignments

        info = resources["nbgrader"]
        coursedir = self._course()
        if coursedir is not None:
            root = Path(coursedir.root)
            submitted = Path(coursedir.format_path(coursedir.submitted_directory, ".", "."))
        else:  # autograded/<student>/<assignment>/ beside submitted/
            root = Path(resources["metadata"]["path"]).resolve().parents[2]
            submitted = root / "submitted"
        out = Path(self.results_dir) if os.path.isabs(self.results_dir) else root / self.results_dir
        log = io.StringIO()
        reports = grade_assignments({assignment.name: [info["student"]]}, submitted, out, execute=self.execute,
                                    profile_name=self.profile, backend=self.backend or None, workers=1, log=log)
        for line in log.getvalue().splitlines():
            self.log.info("%s", line)
        result = reports[0].results[0]
        import nbformat

        release_nb = course_config.COURSE_DIR / "release" / assignment.name / assignment.notebook
        notebook.annotate(nb, result, nbformat.read(release_nb, as_version=4) if release_nb.is_file() else None)
        self.log.info("%s/%s: %g / %g points (graded by the course autograder)", info["student"], assignment.name,
                      result.score, result.max_score)
        return nb, resources


class MarkFlagged(NbGraderPreprocessor):
    """After nbgrader's SaveAutoGrades: a check the kit flagged waits for a TA until one has scored it, and
    the others need no manual grade (as ``autograder grade --gradebook`` records them)."""

    def preprocess(self, nb, resources):
        record = notebook.record_of(nb)
        assignment = _assignment(resources)
        if record is None or assignment is None:
            return nb, resources
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        flagged = {f.get("check") for f in record.get("flags") or [] if isinstance(f, dict)}
        with Gradebook(info["db_url"], info.get("course_id", "")) as gb:
            for check in assignment.checks:
                grade = gb.find_grade(notebook.check_cell_id(check.id), info["notebook"], assignment.name,
                                      info["student"])
                grade.needs_manual_grade = check.id in flagged and grade.manual_score is None
            gb.db.commit()
        return nb, resources


# ------------------------------------------------------------------------------------------------ Feedback
def gradebook_scores(nb) -> dict[str, float]:
    """Each check's score as the gradebook has it (nbgrader's GetGrades put them in the graded cells)."""
    scores = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = notebook.grade_id(cell) or ""
        if gid.startswith(notebook.CHECK_CELL_PREFIX) and meta.get("score") is not None:
            scores[gid[len(notebook.CHECK_CELL_PREFIX):]] = float(meta["score"])
    return scores


class FeedbackPage(Exporter):
    """nbgrader generate_feedback's exporter: the kit's feedback page for a notebook the kit graded."""

    output_mimetype = "text/html"

    def _file_extension_default(self):
        return ".html"

    def from_notebook_node(self, nb, resources=None, **kw):
        nb, resources = super().from_notebook_node(nb, resources, **kw)  # nbgrader's GetGrades runs here
        record = notebook.record_of(nb)
        if record is None:
            from nbconvert.exporters import HTMLExporter

            self.log.warning("%s was not graded by the course autograder: nbgrader's own feedback page",
                             resources.get("nbgrader", {}).get("notebook"))
            return HTMLExporter(parent=self.parent, template_name="feedback").from_notebook_node(nb, resources)
        from autograder.exporters import feedback_html
        from autograder.exporters.nbgrader_course import with_scores

        return feedback_html.render(with_scores(record, gradebook_scores(nb))), resources


# ------------------------------------------------------------------------------------------------ Export
class CheckScoresExport(CsvExportPlugin):
    """``nbgrader export``: nbgrader's CSV (one row per student and assignment, its columns) and then one
    column per check with that check's score (a TA's manual score where there is one)."""

    KEYS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email", "raw_score",
            "late_submission_penalty", "score", "max_score"]

    def export(self, gradebook) -> None:
        import csv

        from nbgrader.api import MissingEntry

        dest = self.to or "grades.csv"
        wanted_students = {str(s) for s in self.student}
        wanted_assignments = {str(a) for a in self.assignment}
        rows, columns = [], []
        for assignment in gradebook.assignments:
            if wanted_assignments and assignment.name not in wanted_assignments:
                continue
            for student in gradebook.students:
                if wanted_students and student.id not in wanted_students:
                    continue
                row = {"assignment": assignment.name, "duedate": assignment.duedate, "student_id": student.id,
                       "last_name": student.last_name, "first_name": student.first_name, "email": student.email,
                       "max_score": assignment.max_score, "timestamp": "", "raw_score": 0.0,
                       "late_submission_penalty": 0.0, "score": 0.0}
                try:
                    submission = gradebook.find_submission(assignment.name, student.id)
                except MissingEntry:
                    pass
                else:
                    penalty = submission.late_submission_penalty
                    row.update(timestamp=submission.timestamp, raw_score=submission.score,
                               late_submission_penalty=penalty, score=max(0.0, submission.score - penalty))
                    for nb_submission in submission.notebooks:
                        for grade in nb_submission.grades:
                            name = grade.name.removeprefix(notebook.CHECK_CELL_PREFIX)
                            if name not in columns:
                                columns.append(name)
                            row[name] = grade.score
                rows.append({key: "" if value is None else value for key, value in row.items()})
        self.log.info("Exporting grades, a column per check, to %s", dest)
        with open(dest, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.KEYS + columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
