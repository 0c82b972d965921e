"""stelae: a static-file, serverless transparency log.

The folders are the architecture (docs/architecture.md):

- ``stelae.tiles``: formats and Merkle math, pure, no I/O beyond the read client's fetchers.
- ``stelae.sequencer``: storage backends, batching, integration, lookup indexes.
- ``stelae.kinds``: entry kinds: schemas, signature checks, canonical bodies.
- ``stelae.lambda``: AWS entry points only (import with importlib: ``lambda`` is a keyword).
- ``stelae.cli``: the ``stelae`` command.
"""

__version__ = "0.1.0"
