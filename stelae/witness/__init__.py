"""A C2SP tlog-witness (https://c2sp.org/tlog-witness@v1.0.0): ``stelae witness``.

- :mod:`stelae.witness.loglist` — the logs it witnesses (the witness network's ``logs/v0``);
- :mod:`stelae.witness.identity` — its cosigning key on disk;
- :mod:`stelae.witness.state` — the latest cosigned checkpoint per log, durable, compare-and-swap
  (the :class:`~stelae.witness.state.WitnessStore` seam; files under ``flock``);
- :mod:`stelae.witness.s3state` — the same in S3, under conditional writes;
- :mod:`stelae.witness.ratelimit` — each log's allowed add-checkpoint requests per day;
- :mod:`stelae.witness.protocol` — add-checkpoint and the monitoring read, as status + body;
- :mod:`stelae.witness.routes` — which path and method get which answer;
- :mod:`stelae.witness.server` — the HTTP wiring;
- :mod:`stelae.witness.gateway`, :mod:`stelae.witness.aws` — the serverless witness: API Gateway
  events and the Lambda's configuration (docs/witness.md, "On AWS").
"""
