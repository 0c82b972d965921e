"""What the witnesses say they cosigned, and whether it is the tree the log shows us.

A monitor reads each policy witness's latest cosigned checkpoint of the log with the monitoring
read of https://c2sp.org/tlog-witness (``GET <prefix>/<sha256(origin) hex>/checkpoint``, in the
spec's current draft) and checks that it is consistent with the checkpoint the log serves it:
the same root at the same size, or an RFC 6962 consistency proof computed from the log's tiles.
A witness that cosigned a tree the log's own tiles contradict is holding the other half of a
split view: both signed notes together prove the log signed two inconsistent trees.

A witness that cannot be read, has cosigned nothing yet, or serves a note the log did not sign
is reported but proves nothing about the log; neither does a larger tree whose tiles the log
does not serve yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stelae.errors import StelaeError
from stelae.tiles.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from stelae.tiles.client import LogClient, TileReader
from stelae.tiles.errors import NotFoundError, VerificationError
from stelae.tiles.fetch import Fetcher, fetcher_for
from stelae.tiles.policy import Policy, PolicyWitness
from stelae.tiles.proof import verify_consistency
from stelae.witness.state import origin_hash

__all__ = ["WitnessView", "witness_views"]


@dataclass(frozen=True)
class WitnessView:
    """One witness's latest cosigned checkpoint (``note``) and the verdict on it.

    ``split`` is True when it contradicts ``ours`` (the evidence is ``note`` and ``ours``);
    ``problem`` says why nothing could be concluded, when that is the case.
    """

    witness: str
    note: bytes | None
    split: bool = False
    reason: str = ""
    problem: str | None = None


def witness_views(
    policy: Policy,
    client: LogClient,
    ours: SignedCheckpoint,
    fetcher: Callable[[str], Fetcher] = fetcher_for,
) -> list[WitnessView]:
    """The view of every policy witness that has a URL, checked against ``ours``."""
    return [
        _view(w, client, ours, fetcher(w.url.rstrip("/") + "/"))
        for w in policy.witnesses
        if w.url is not None
    ]


def _view(
    witness: PolicyWitness, client: LogClient, ours: SignedCheckpoint, fetcher: Fetcher
) -> WitnessView:
    name, origin = witness.name, ours.checkpoint.origin
    try:
        data = fetcher.fetch(f"{origin_hash(origin)}/checkpoint")
    except NotFoundError:
        return WitnessView(name, None, problem="it has cosigned no checkpoint of this log")
    except (StelaeError, OSError) as err:
        return WitnessView(name, None, problem=f"could not read its checkpoint: {err}")
    try:
        theirs = open_checkpoint(data, client.verifiers, origin, witnesses=[witness.verifier])
    except StelaeError as err:
        return WitnessView(name, data, problem=f"its checkpoint does not verify: {err}")
    key = (witness.verifier.name, witness.verifier.key_id)
    if not any((c.signature.name, c.signature.key_id) == key for c in theirs.note.cosignatures):
        return WitnessView(name, data, problem="its checkpoint carries no cosignature of its own")
    try:
        _check_consistent(client, ours.checkpoint, theirs.checkpoint)
    except NotFoundError as err:
        return WitnessView(name, data, problem=f"cannot check its larger tree yet: {err}")
    except VerificationError as err:
        return WitnessView(name, data, split=True, reason=str(err))
    except StelaeError as err:
        return WitnessView(name, data, problem=f"could not check its tree: {err}")
    return WitnessView(name, data)


def _check_consistent(client: LogClient, a: Checkpoint, b: Checkpoint) -> None:
    """Raise :class:`VerificationError` unless ``a`` (ours) and ``b`` (the witness's) are the
    same tree or one extends the other, by a consistency proof from the log's tiles;
    :class:`NotFoundError` when those tiles are not served yet."""
    if a.size == b.size:
        if a.root_hash != b.root_hash:
            raise VerificationError(f"two roots at size {a.size}")
    elif b.size < a.size:
        proof = client.tiles.consistency_proof(b.size, a.size) if b.size else []
        if b.size:
            verify_consistency(b.size, a.size, proof, b.root_hash, a.root_hash)
    elif a.size:
        # Their tree is larger: read the tiles at their size, without moving the size the
        # caller's client reads at (the log may not serve it to us yet).
        tiles = TileReader(client.fetcher, read_size=b.size)
        proof = tiles.consistency_proof(a.size, b.size)
        verify_consistency(a.size, b.size, proof, a.root_hash, b.root_hash)
