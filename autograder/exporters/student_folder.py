"""A student's folder of results, one home for the batch, the Dask workers and Gradescope.

``results.json`` (Gradescope's format) first, then the feedback pages (``feedback.md``,
``feedback.html``), then, where the batch keeps it, the grading record that says the folder is complete
(written last: a folder without it is graded again).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from autograder.exporters import feedback_html, feedback_md, gradescope
from autograder.results import StudentResult, save_record


def write(result: StudentResult, folder: Path, *, record: bool = True, pages_may_fail: bool = False) -> None:
    """Write ``result`` into ``folder``: results.json, the feedback pages, and with ``record`` the grading record.

    With ``pages_may_fail`` (Gradescope: results.json is what counts) a feedback page that fails to render is
    reported on stderr and costs nobody their score; otherwise the failure is raised, as any exporter's bug."""
    folder.mkdir(parents=True, exist_ok=True)
    data = result.to_dict()
    gradescope.write(result, folder)
    try:
        feedback_md.write(result, folder)
        feedback_html.write(data, folder)
    except Exception:
        if not pages_may_fail:
            raise
        traceback.print_exc(file=sys.stderr)
    if record:
        save_record(result, folder, data)
