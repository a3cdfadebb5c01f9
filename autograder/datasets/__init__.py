"""The datasets the kit grades on: a module per dataset, the grader's side of each.

The kit's own datasets are ``autograder.config.BUILT_IN_DATASETS`` (MNIST, SUSY:
``autograder/datasets/<name>.py``); any other is described as data in the course's configuration
(``autograder.config.Dataset``) and graded by :mod:`~autograder.datasets.described`.
:mod:`~autograder.datasets.tasks` finds the one an assignment names. The loaders students use are the
``autograder/course_data/`` package, shipped beside every notebook. Nothing outside a dataset's own
modules branches on a dataset's name (``tests/test_layout.py`` looks).
"""
