"""Nightly scoring: extract a read date's decidable exceptions, validate, score, write back.

`steps` holds the step functions that both the DAG (`dags/vee_nightly_scoring.py`, one task
each) and `pipeline.score_read_date` (no scheduler) call. This package's `__init__` stays
light: the DAG file imports nothing heavy at parse time.
"""
