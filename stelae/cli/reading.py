"""What every reader command shares: where the log is, whose key signs it, and what was seen before.

:func:`reader_options` adds ``--log-url``, ``--vkey``, ``--origin``, ``--state-dir`` and
``--witness-policy`` to a command and hands it a :class:`Reader`: a verifying
:class:`~stelae.tiles.client.LogClient` plus the log's :class:`~stelae.cli.state.LogState`.
:meth:`Reader.current` is the one way commands get a checkpoint: verified, cosigned by the witness
policy's quorum when one is given (https://c2sp.org/tlog-policy), proved consistent with the last
one this machine saw, and remembered.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from stelae.cli.output import read_value
from stelae.cli.state import LogState, StateError, default_state_dir
from stelae.errors import StelaeError
from stelae.tiles.checkpoint import SignedCheckpoint
from stelae.tiles.client import InconsistentCheckpointsError, LogClient
from stelae.tiles.errors import FormatError, NotFoundError, VerificationError
from stelae.tiles.fetch import CachingFetcher, Fetcher, fetcher_for
from stelae.tiles.mldsa import MLDSA44CosignatureVerifier
from stelae.tiles.notekeys import VkeyVerifier, parse_vkey
from stelae.tiles.paths import HISTORY_DIR, history_path, history_size
from stelae.tiles.policy import Policy

F = TypeVar("F", bound=Callable[..., Any])


class BadHistoryError(VerificationError):
    """A checkpoint history object is not a checkpoint the log signed at that size."""


@dataclass
class Reader:
    """A log as a reader sees it. ``local_dir`` is set when the log is a local directory."""

    location: str
    client: LogClient
    key_id: int
    state: LogState
    local_dir: Path | None = None
    policy: Policy | None = None  # --witness-policy: its quorum must cosign every checkpoint
    index_key: bool = True  # a --vkey that can verify the lookup index (not ML-DSA-44 alone)

    def require_index_key(self) -> None:
        """Refuse (exit 2) a command that reads the lookup index (docs/index.md) when the only
        log key given is the ML-DSA-44 one: the index manifests are signed by the log's Ed25519
        key alone (an ML-DSA-44 log signature signs checkpoint fields, not other notes), so
        without it every manifest would look forged."""
        if not self.index_key:
            raise click.UsageError(
                "this reads the log's lookup index, which the log signs with its Ed25519 key "
                "alone: give that key with --vkey too (the ML-DSA-44 key covers checkpoints)"
            )

    @property
    def origin(self) -> str:
        return self.client.origin

    def current(self) -> SignedCheckpoint:
        """The log's checkpoint, verified and proved consistent with the last one seen.

        A checkpoint at least as large as the stored one replaces it (atomically, under the
        state lock). An older one (a stale cache) is accepted if the stored one extends it, and
        the stored one is kept. An inconsistent one prints both checkpoints on stderr and raises
        :class:`~stelae.tiles.client.InconsistentCheckpointsError`; the state is left untouched.
        """
        new = self.client.checkpoint()
        require_quorum(self.policy, new)
        with self.state.locked():
            old = self.last_seen()
            if old is None:
                self.state.store_checkpoint(new.to_bytes())
                return new
            try:
                if new.checkpoint.size >= old.checkpoint.size:
                    self.client.prove_consistency(old, new)
                    if new.to_bytes() != old.to_bytes():
                        self.state.store_checkpoint(new.to_bytes())
                else:
                    self.client.prove_consistency(new, old)
                    click.echo(
                        f"warning: the log served size {new.checkpoint.size}, older than size "
                        f"{old.checkpoint.size} seen before (a stale cache?); keeping the newer",
                        err=True,
                    )
            except InconsistentCheckpointsError as err:
                old_first = new.checkpoint.size >= old.checkpoint.size
                print_fork_evidence(
                    err.old if old_first else err.new,
                    err.new if old_first else err.old,
                    f"the checkpoint seen before ({self.state.checkpoint_path})",
                    "the checkpoint the log serves now",
                )
                raise
        return new

    def last_seen(self) -> SignedCheckpoint | None:
        """The stored checkpoint, re-verified with the log's key (state is not trusted)."""
        stored = self.state.last_checkpoint()
        if stored is None:
            return None
        try:
            return self.client.open_checkpoint(stored)
        except StelaeError as err:
            raise StateError(
                f"the stored checkpoint {self.state.checkpoint_path} does not verify: {err}",
                hint="delete it only if you know why it is wrong; it is your fork evidence",
            ) from err

    def history(self, size: int) -> SignedCheckpoint | None:
        """The verified history object ``checkpoints/<size>``, or None if the log has none."""
        try:
            data = self.client.fetcher.fetch(history_path(size))
        except NotFoundError:
            return None
        try:
            cp = self.client.open_checkpoint(data)
        except StelaeError as err:
            raise BadHistoryError(f"{history_path(size)}: {err}") from err
        if cp.checkpoint.size != size:
            raise BadHistoryError(
                f"{history_path(size)} holds the checkpoint of size {cp.checkpoint.size}"
            )
        return cp

    def history_sizes(self) -> list[int]:
        """Sizes of the history objects a local log holds (a static HTTP prefix can't be listed)."""
        if self.local_dir is None:
            return []
        try:
            names = [p.name for p in (self.local_dir / HISTORY_DIR).iterdir()]
        except OSError:
            return []  # no history directory: nothing to check, which is not an error
        sizes = []
        for name in names:
            try:
                sizes.append(history_size(name))
            except FormatError:
                continue  # not a history object's name (a stray or temporary file): not ours
        return sorted(sizes)


def print_fork_evidence(old: bytes, new: bytes, old_label: str, new_label: str) -> None:
    """Both signed checkpoints, verbatim, on stderr: what a user needs to prove the fork."""
    click.echo("FORK: two checkpoints of this log are not consistent; evidence follows.", err=True)
    for label, note in ((old_label, old), (new_label, new)):
        click.echo(f"--- {label}:", err=True)
        click.echo(note.decode("utf-8", "replace").rstrip("\n"), err=True)
    click.echo("---", err=True)


def load_policy(path: Path | None) -> Policy | None:
    """``--witness-policy FILE`` → a :class:`~stelae.tiles.policy.Policy`; a bad file is a
    usage error (exit 2) naming the line."""
    if path is None:
        return None
    try:
        return Policy.parse(path.read_bytes())
    except (OSError, FormatError) as err:
        raise click.BadParameter(f"{path}: {err}", param_hint="'--witness-policy'") from err


def require_quorum(policy: Policy | None, cp: SignedCheckpoint) -> None:
    """Raise :class:`~stelae.tiles.policy.QuorumNotMetError` (exit 1, naming the witnesses that
    cosigned and those missing) unless ``policy``'s quorum cosigned ``cp``. The log's own
    signature was verified with ``--vkey`` already; the policy adds the witnesses."""
    if policy is not None:
        policy.check_quorum(cp.to_bytes())


witness_policy_option = click.option(
    "--witness-policy",
    envvar="STELAE_WITNESS_POLICY",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A C2SP tlog-policy file: checkpoints must carry cosignatures from its witness "
    "quorum, else exit 1 [env: STELAE_WITNESS_POLICY].",
)


def vkey_verifiers(values: str | Sequence[str]) -> list[VkeyVerifier]:
    """``--vkey KEY|@FILE``, given once or more, each value one key or several separated by
    blanks or newlines (an @FILE of two lines: the log's Ed25519 and ML-DSA-44 keys) → the
    verifiers, in order. A bad key is a usage error (exit 2)."""
    texts = [values] if isinstance(values, str) else list(values)
    try:
        keys = [key for text in texts for key in read_value(text, "--vkey").split()]
        if not keys:
            raise FormatError("no verifier key given")
        return [parse_vkey(key) for key in keys]
    except FormatError as err:
        raise click.BadParameter(str(err), param_hint="'--vkey'") from err


def open_reader(
    log_url: str,
    vkey: str | Sequence[str],
    origin: str | None,
    state_dir: Path | None,
    witness_policy: Path | None = None,
) -> Reader:
    """Build a :class:`Reader` from option values; bad values are usage errors (exit 2).

    With several log keys, every checkpoint must carry a valid signature from each (a reader
    pinning the Ed25519 and ML-DSA-44 keys gets no weaker than either); the first key names
    the log's state directory and, without ``--origin``, its origin."""
    verifiers = vkey_verifiers(vkey)
    verifier = verifiers[0]
    local_dir: Path | None = None
    location = log_url
    if "://" not in log_url:
        local_dir = Path(log_url)
        if not local_dir.is_dir():
            raise click.BadParameter(
                f"{log_url} is not a directory{url_suggestion(log_url)}", param_hint="'--log-url'"
            )
        if (local_dir / "config.json").is_file() and (local_dir / "log").is_dir():
            local_dir = local_dir / "log"  # a `stelae init` data directory: read its log
        location = str(local_dir)
    try:
        fetcher = _s3_fetcher(log_url) if log_url.startswith("s3://") else fetcher_for(location)
    except FormatError as err:
        raise click.BadParameter(str(err), param_hint="'--log-url'") from err
    client = LogClient(fetcher, verifiers, origin or verifier.name, require_all=len(verifiers) > 1)
    root = state_dir if state_dir is not None else default_state_dir()
    state = LogState(root, client.origin, verifier.key_id)
    index_key = any(not isinstance(v, MLDSA44CosignatureVerifier) for v in verifiers)
    policy = load_policy(witness_policy)
    return Reader(location, client, verifier.key_id, state, local_dir, policy, index_key)


_HOST_PORT = re.compile(r"(?:localhost|[0-9.]+|\[[0-9a-fA-F:]+\]|[\w.-]+\.[a-z]+):\d+(?:/.*)?")


def url_suggestion(value: str) -> str:
    """``"; did you mean http://VALUE?"`` when ``value`` looks like HOST:PORT without a scheme."""
    return f"; did you mean http://{value}?" if _HOST_PORT.fullmatch(value) else ""


def _s3_fetcher(url: str) -> Fetcher:
    """``s3://bucket[/prefix]``: read the bucket directly with boto3."""
    from stelae.sequencer.reader import StoreFetcher  # noqa: PLC0415 - boto3 only when asked
    from stelae.sequencer.s3 import S3Store  # noqa: PLC0415

    return CachingFetcher(StoreFetcher(S3Store.from_url(url)))


def reader_options(f: F) -> F:
    """Add the reader options to a command, which then receives ``reader: Reader``."""

    @functools.wraps(f)
    def wrapper(
        *args: Any,
        log_url: str | None,
        vkey: tuple[str, ...],
        origin: str | None,
        state_dir: Path | None,
        witness_policy: Path | None,
        **kwargs: Any,
    ) -> Any:
        # Checked here rather than by click's required=True, whose message names only the
        # option: most people set these once in the environment.
        if not log_url:
            raise click.UsageError(
                "Missing option '--log-url' (or STELAE_LOG_URL): the log's URL or directory"
            )
        if not vkey:
            raise click.UsageError(
                "Missing option '--vkey' (or STELAE_VKEY): the log's verifier key, or @FILE "
                "holding it (stelae init prints it)"
            )
        reader = open_reader(log_url, vkey, origin, state_dir, witness_policy)
        return f(*args, reader=reader, **kwargs)

    options = [
        click.option(
            "--log-url",
            envvar="STELAE_LOG_URL",
            metavar="URL|DIR",
            help="The log's tlog-tiles prefix: an http(s):// URL, s3://BUCKET[/PREFIX], or a "
            "local directory [env: STELAE_LOG_URL].",
        ),
        click.option(
            "--vkey",
            envvar="STELAE_VKEY",
            metavar="KEY|@FILE",
            multiple=True,
            help="The log's verifier key (name+id+key), or @FILE holding it; repeat it (or put "
            "both in the file) to require the log's Ed25519 and ML-DSA-44 signatures both "
            "[env: STELAE_VKEY, blank-separated].",
        ),
        click.option(
            "--origin",
            default=None,
            help="The checkpoint origin, when it differs from the key's name (Rekor v1).",
        ),
        click.option(
            "--state-dir",
            envvar="STELAE_STATE_DIR",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Where the last verified checkpoints are kept "
            "[env: STELAE_STATE_DIR; default: $XDG_STATE_HOME/stelae or ~/.local/state/stelae].",
        ),
        witness_policy_option,
    ]
    decorated: Callable[..., Any] = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return cast(F, decorated)
