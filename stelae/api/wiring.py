"""The one place a :class:`~stelae.api.service.WriteService` is put together.

Every front end — the one-process server, a ``--workers`` worker, the AWS write Lambda, the
benchmarks and the tests — differs only in how it hands entries to the sequencer (its
:class:`~stelae.api.submit.Submitter`) and in its settings. What the service reads proofs from is
the same everywhere: the log's own object store, through the read-only view a CDN would serve
(:class:`~stelae.sequencer.reader.StoreFetcher`), checked against the log's key.
"""

from __future__ import annotations

from stelae.api.identity import LogIdentity
from stelae.api.service import ServiceConfig, WriteService
from stelae.api.submit import Submitter
from stelae.sequencer.reader import StoreFetcher
from stelae.sequencer.store import ObjectStore


def write_service(
    submitter: Submitter,
    store: ObjectStore,
    vkey: str,
    config: ServiceConfig | None = None,
) -> WriteService:
    """The write API of the log in ``store`` whose verifier key is ``vkey``.

    Raises :class:`~stelae.tiles.errors.FormatError` if ``vkey`` is not an Ed25519 note key.
    """
    return WriteService(submitter, StoreFetcher(store), LogIdentity.from_vkey(vkey), config)
