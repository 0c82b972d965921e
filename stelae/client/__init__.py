"""The log's users' side of the write path: making the signed requests the kinds verify.

``stelae keygen``, ``sign`` and ``upload`` use it, and so do tests and benchmarks that need valid
entries. Nothing here is needed to run a log: :mod:`stelae.kinds` verifies entries and never
signs them.
"""
