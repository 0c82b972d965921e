"""The write API: Rekor v1 and v2 wire shapes over one internal entry model.

The service takes a transport-neutral :class:`~stelae.api.http.Request` and returns a
:class:`~stelae.api.http.Response`. The AWS Lambda handler converts API Gateway HTTP API events
(payload format 2.0) to and from those (:mod:`stelae.api.gateway`); the local server builds the
request from the HTTP request it parsed and calls the same service (docs/README.md).
"""
