"""Grading one submission: the steps in order (:mod:`~autograder.grading.submission`), the files taken
(:mod:`~autograder.grading.files`), re-execution (:mod:`~autograder.grading.execute`) and prediction
(:mod:`~autograder.grading.predict`)."""
