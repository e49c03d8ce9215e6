"""Helpers for the shipped job scripts.

The dispatcher runs job scripts with the workspace folder on ``PYTHONPATH``, so
scripts import these as ``jobkit``. The service itself never imports them.
"""
