"""The graded checks: one pytest module per assignment, one plain test per graded check.

Each test carries ``@pytest.mark.check("<id>")`` naming a check in ``course_config.py``, which
gives its title and points. Fixtures (``model``, ``predictions``, ``labels``, ``threshold``,
``score``) come from :mod:`autograder.checks.plugin`.
"""

from pathlib import Path

CHECKS_DIR = Path(__file__).resolve().parent
FROM_CONFIG = CHECKS_DIR / "from_config.py"  # the checks of an assignment without a module of its own


def check_module(assignment_name: str) -> Path:
    """The pytest file holding the checks of an assignment: its own module, or, for an assignment described
    by its configuration alone, :mod:`autograder.checks.from_config`."""
    own = CHECKS_DIR / f"test_{assignment_name}.py"
    return own if own.is_file() else FROM_CONFIG
