"""Benchmarks for stelae: proof costs, integration throughput, object writes and memory.

Run them all with ``python -m benchmarks.run`` (``make bench``). Every timing is reported as a
ratio against a baseline measured in the same run, because the machines they run on are shared
and noisy; absolute figures are printed beside the ratios. See ``benchmarks/README.md``.
"""
