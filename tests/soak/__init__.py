"""Chaos soak: many producers and workers, SIGKILLs, Redis restarts, SMTP outages; every id accounted for.

Run the full soak with ``python -m tests.soak --n 100000`` (``make soak``); ``tests/soak/test_soak.py``
runs a CI-sized one.  ``python -m tests.soak crash`` measures what a Redis kill -9 right after
enqueue loses under ``appendfsync everysec`` and ``always``.  Results: docs/reliability.md.
"""
