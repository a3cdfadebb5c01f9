"""nbgrader's configuration for this course: nbgrader's buttons do the kit's job.

nbgrader reads this file when it runs in this folder (the course's top folder): `nbgrader
generate_assignment`, `validate`, `autograde`, `generate_feedback`, `export`, and formgrader's buttons
in a Jupyter server started here. See the README's "With nbgrader" section and autograder/nbgrader_plugins.py.
A course folder elsewhere (with `submitted/` and the gradebook) uses the same two lines in its own
nbgrader_config.py, with the kit installed in the Python that runs nbgrader.
"""

from autograder.nbgrader_plugins import configure

c = get_config()  # noqa: F821  (nbgrader's config loader provides it)
configure(c)

# Grading re-runs the notebooks instead of grading the saved models (as `autograder grade --execute`):
# c.GradeWithKit.execute = True
# c.GradeWithKit.profile = "quick"
# Where the kit's results go (as `autograder grade --out`), relative to this folder:
# c.GradeWithKit.results_dir = "graded"
