"""Reading a student's model files without loading them (architecture, weight shapes, what saved them).

The package travels in every notebook's helper cell too (the student's check before hand-in reads the
files as the grader does), so its modules import the grader's reader as ``autograder.keras_numpy`` in the
grader and as ``keras_numpy`` in a notebook, and nothing else of the grader.
"""
