"""The write API: Rekor v1 and v2 wire shapes over one internal entry model.

The service takes a transport-neutral :class:`~stelae.api.http.Request` and returns a
:class:`~stelae.api.http.Response`. The AWS Lambda handler converts API Gateway HTTP API events
(payload format 2.0) to and from those; the local server converts real HTTP requests *into* the
same events first, so both run exactly the same code path.
"""
