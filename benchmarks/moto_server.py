"""The cost model's moto server: moto's own, with one lookup read directly instead of rebuilt.

moto's SQS checks every message it hands out against the queue's retention period, and reads
that period by rebuilding the queue's whole attribute map — three counts, each a scan of every
message in the queue — several times per message. A ReceiveMessage from a queue holding 500
messages took about 0.7 s, so the event source mapping stand-in spent most of a wave of 1,000
(the asynchronous rows at batch 1,000) waiting on those scans. Here the retention period is read
from the queue itself: the same value and the same answers, without the scans. Nothing else of
moto is changed, and nothing the benchmark counts depends on the emulator's speed.
"""

from __future__ import annotations

import sys
from typing import Any

from moto.core.utils import unix_time
from moto.server import main
from moto.sqs.models import SQSBackend


def _retained(self: SQSBackend, queue_name: str, message: Any) -> bool:
    """moto's ``is_message_valid_based_on_retention_period``, reading the period directly (its
    ``MessageRetentionPeriod`` attribute is this very field)."""
    retention = self.get_queue(queue_name).message_retention_period  # type: ignore[attr-defined]
    return bool(retention + message.sent_timestamp / 1000 > unix_time())


if __name__ == "__main__":
    SQSBackend.is_message_valid_based_on_retention_period = _retained  # type: ignore[method-assign]
    main(sys.argv[1:])
