"""Autograder for the 'Machine Learning for physicists' assignments (see README.md)."""

__version__ = "0.1.0"
