"""The hidden test data of each dataset, the grader's side (:mod:`~autograder.datasets.tasks`), and the
offline SUSY simulator (:mod:`~autograder.datasets.susy_sim`). The loaders students use are
``autograder/course_data.py``, shipped beside every notebook."""
