"""One front-end worker of ``stelae serve --workers N``: HTTP, the write API and static reads.

Started by the supervisor (:mod:`stelae.server.prefork`) as ``python -m stelae.server.worker
SETTINGS``, with two inherited descriptors: the listening socket every worker accepts from, and
its end of the relay channel to the sequencer. A worker parses, validates, verifies and
canonicalizes requests, builds proofs from the log's files, and sends entries to the supervisor's
batcher through :class:`~stelae.server.relay.RemoteSubmitter`; it never writes to the log.

SIGTERM or SIGINT: stop accepting, answer every request in flight (their receipts still arrive,
since the supervisor keeps sequencing until its workers have exited), then exit 0. If the
supervisor goes away, waiting requests fail with 503 and the worker exits.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stelae.api.service import ServiceConfig
from stelae.api.wiring import write_service
from stelae.sequencer.logdir import open_log
from stelae.server.app import make_app
from stelae.server.http1 import HTTPServer
from stelae.server.relay import Channel, RemoteSubmitter
from stelae.server.static import StaticFiles
from stelae.tiles.errors import FormatError

log = logging.getLogger("stelae.server")


@dataclass(frozen=True)
class WorkerSettings:
    """What the supervisor passes on the command line (one JSON argument)."""

    data: str
    listen_fd: int
    relay_fd: int
    wait_seconds: float
    strict_duplicates: bool

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> WorkerSettings:
        try:
            obj: Any = json.loads(text)
            return cls(
                str(obj["data"]),
                int(obj["listen_fd"]),
                int(obj["relay_fd"]),
                float(obj["wait_seconds"]),
                bool(obj["strict_duplicates"]),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise FormatError(f"worker settings are not valid: {err}") from err


def run(settings: WorkerSettings) -> int:
    local = open_log(Path(settings.data))
    listener = socket.socket(fileno=settings.listen_fd)
    stop = threading.Event()
    # The supervisor gone means nothing more can be answered: stop, as on SIGTERM.
    submitter = RemoteSubmitter(Channel(socket.socket(fileno=settings.relay_fd)), stop.set)
    service = write_service(
        submitter,
        local.store,
        local.config.vkey,
        ServiceConfig(
            wait_seconds=settings.wait_seconds, strict_duplicates=settings.strict_duplicates
        ),
    )
    httpd = HTTPServer.on_socket(
        listener,
        make_app(service, StaticFiles(local.log_dir)),
        max_body=service.config.max_request_bytes,  # refused (413) before any of it is read
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serving = threading.Thread(target=httpd.serve_forever, name="stelae-http")
    serving.start()
    try:
        submitter.ready(os.getpid())
        stop.wait()
    finally:
        httpd.shutdown()
        serving.join()
        httpd.end_idle_reads()
        httpd.server_close()  # waits for in-flight requests to be answered
        submitter.channel.close()
    return 0


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="stelae worker %(process)d: %(message)s")
    if len(argv) != 1:
        print("usage: python -m stelae.server.worker SETTINGS_JSON", file=sys.stderr)
        return 2
    return run(WorkerSettings.from_json(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
