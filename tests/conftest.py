"""Shared fixtures: real servers on loopback, never patched clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class MotoEndpoint:
    """A moto server in server mode on 127.0.0.1, reached with real boto3 clients."""

    url: str
    region: str = "us-east-1"

    def client(self, service: str) -> object:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def reset(self) -> None:
        """Forget every resource (moto's own reset endpoint)."""
        import urllib.request

        req = urllib.request.Request(self.url + "/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()


def _fake_aws_credentials() -> None:
    """boto3 must never reach a real account, whatever the developer's environment holds."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(var, None)
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoEndpoint]:
    """One moto server for the whole session; tests isolate by resource name."""
    from moto.server import ThreadedMotoServer

    _fake_aws_credentials()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoEndpoint(url=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_serial() -> Iterator[MotoEndpoint]:
    """A moto server that handles one request at a time.

    moto checks S3's conditional writes (If-Match / If-None-Match) without a lock, so two
    concurrent requests can both pass the check; real S3 makes them atomic. Serializing requests
    restores that atomicity, which the race tests rely on, without patching anything.
    """
    import threading

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    _fake_aws_credentials()
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield MotoEndpoint(url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join()
