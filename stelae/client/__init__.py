"""What a log's users run on their side, beside the verifying read client of
:mod:`stelae.tiles.client`.

- :mod:`stelae.client.signing`: keys, signatures and the signed requests the kinds verify
  (``stelae keygen``, ``sign`` and ``upload``; tests and benchmarks that need valid entries).
  Nothing here is needed to run a log: :mod:`stelae.kinds` verifies entries and never signs them.
- :mod:`stelae.client.monitor`: the monitor's audit rounds (``stelae monitor``).
"""
