"""Requests and responses, and their API Gateway HTTP API (payload format 2.0) event forms."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from stelae.tiles.errors import FormatError


@dataclass(frozen=True)
class Request:
    """An HTTP request: header names lowercased, query parameters decoded, body raw bytes."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @classmethod
    def from_apigw_v2(cls, event: Mapping[str, Any]) -> Request:
        """Parse an API Gateway v2 event; a malformed event raises FormatError."""
        try:
            http = event["requestContext"]["http"]
            method, path = str(http["method"]).upper(), str(http.get("path") or event["rawPath"])
        except (KeyError, TypeError) as err:
            raise FormatError("not an API Gateway HTTP API (2.0) event") from err
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        query = dict(parse_qsl(str(event.get("rawQueryString") or ""), keep_blank_values=True))
        raw = event.get("body") or ""
        if not isinstance(raw, str):
            raise FormatError("event body is not a string")
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError) as err:
                raise FormatError("event body is marked base64 but is not") from err
        else:
            try:
                body = raw.encode()
            except UnicodeEncodeError as err:
                # A lone surrogate (JSON's "\ud800" escape) has no UTF-8 form: no HTTP body
                # arrives like that, but a direct invocation can send it.
                raise FormatError("event body is not UTF-8 text") from err
        return cls(method, path, headers, query, body)

    def to_apigw_v2(self) -> dict[str, Any]:
        """The event API Gateway would deliver for this request (for tests and benchmarks that
        drive the Lambda's adapter with a request)."""
        query = "&".join(f"{k}={v}" for k, v in self.query.items())
        return {
            "version": "2.0",
            "routeKey": f"{self.method} {self.path}",
            "rawPath": self.path,
            "rawQueryString": query,
            "headers": dict(self.headers),
            "requestContext": {"http": {"method": self.method, "path": self.path}},
            "body": base64.b64encode(self.body).decode(),
            "isBase64Encoded": True,
        }


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, obj: object, headers: Mapping[str, str] | None = None) -> Response:
        body = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})

    def to_apigw_v2(self) -> dict[str, Any]:
        try:
            text, b64 = self.body.decode(), False
        except UnicodeDecodeError:
            text, b64 = base64.b64encode(self.body).decode(), True
        return {
            "statusCode": self.status,
            "headers": dict(self.headers),
            "body": text,
            "isBase64Encoded": b64,
        }

    @classmethod
    def from_apigw_v2(cls, result: Mapping[str, Any]) -> Response:
        body = str(result.get("body") or "")
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        return cls(int(result["statusCode"]), data, dict(result.get("headers") or {}))
