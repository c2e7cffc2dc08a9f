"""A/B testing: experiment design (sample size, MDE) and the statistics of the analysis.

design.py plans an experiment; stats.py analyses one from per-user values; __main__.py is the
command line (`python -m python_jobs.ab design ...`). Formulas: docs/ab_testing.md.
"""
