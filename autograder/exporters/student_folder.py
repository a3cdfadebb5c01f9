"""A student's folder of results, one home for the batch, the Dask workers and Gradescope.

``results.json`` (Gradescope's format) first, then the feedback pages (``feedback.md``,
``feedback.html``), then, where the batch keeps them, what the class's similarity report keeps of the
models (``evidence.npz``, :mod:`autograder.similarity`) and the grading record that says the folder is
complete (written last: a folder without it is graded again).
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

from autograder.exporters import feedback_html, feedback_md, gradescope
from autograder.results import StudentResult, save_record
from autograder.similarity import EVIDENCE_FILE


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
        write_evidence(result.evidence, folder)
        save_record(result, folder, data)


def write_evidence(evidence: dict, folder: Path) -> None:
    """``folder/evidence.npz`` (atomically), or no such file where the result keeps nothing (no model graded)."""
    path = folder / EVIDENCE_FILE
    if not evidence:
        path.unlink(missing_ok=True)
        return
    fd, tmp = tempfile.mkstemp(prefix=".evidence.", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **evidence)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
