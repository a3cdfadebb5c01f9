"""Gradescope: the autograder bundle (``autograder gradescope``) and its entry point."""
