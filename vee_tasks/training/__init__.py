"""Weekly retraining: labels, validation, features, candidates, evaluation, registration.

Import the submodules (`pipeline`, `predictor`, ...) directly; this package imports nothing
heavy so that the DAG file and `vee --help` stay fast.
"""
