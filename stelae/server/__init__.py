"""``stelae serve``: the write API, the sequencer and static reads of a local log.

One process by default (:mod:`~stelae.server.app`); with ``--workers N`` a supervisor keeps the
sequencer and N front-end processes share the port (:mod:`~stelae.server.prefork`,
:mod:`~stelae.server.worker`, :mod:`~stelae.server.relay`). HTTP/1.1 is :mod:`~stelae.server.http1`.
"""
