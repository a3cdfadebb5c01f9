"""Exporters: plain functions of grading results (CSV, console, Gradescope, gradebook, feedback, summary)."""
