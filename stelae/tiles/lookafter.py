"""The advised first look: how long after sending a waiting writer should first look for its batch.

A writer on AWS (:class:`~stelae.sequencer.sqs.SqsSubmitter`) cannot know when the batch holding
its entry will close; the sequencer can, at least after the fact. When it claims a batch it knows
how long ago each entry was sent (SQS's ``SentTimestamp``), and it knows how long its previous
batch took from claim to published checkpoint. Their sum, the ages taken at their 90th
percentile, is what it writes into the batch record as ``look_after_ms``
(:mod:`stelae.tiles.batch`; docs/sequencing.md, "Receipts for waiting writers"). The value is
advisory: a writer that follows a wrong one only spends more GETs or more time, since what it
accepts is still only a batch record its verified checkpoint covers.

Pure: the caller passes the clock reading (``now_ms``) and the send times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MAX_LOOK_AFTER_MS = 600_000
"""The largest ``look_after_ms`` a batch record may carry (10 minutes): far beyond any sensible
batching window, and small enough that a writer can never be told to wait out its deadline on
the strength of one record. The computation clamps to it; the parser refuses anything above."""

PERCENTILE = 90
"""Which of the batch's entry ages is advised: with the 90th, nine writers in ten of a batch like
this one would have found their batch at their first look."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` by the nearest-rank method (the smallest value that at
    least ``q`` % of the values do not exceed). Raises ValueError on no values or ``q`` outside
    (0, 100]."""
    if not values:
        raise ValueError("the percentile of no values")
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} is not in (0, 100]")
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[rank - 1]


def look_after_ms(
    sent_ms: Sequence[int], now_ms: int, previous_publish_ms: int | None
) -> int | None:
    """The advice for the batch claimed at ``now_ms`` (milliseconds since the epoch) holding
    entries sent at ``sent_ms``: the :data:`PERCENTILE` of their ages at the claim plus
    ``previous_publish_ms``, the previous batch's claim-to-checkpoint time. Ages below 0 (a clock
    behind SQS's) count as 0; the sum is clamped to :data:`MAX_LOOK_AFTER_MS`.

    None — the record carries no advice, and writers look after ``first_poll`` — when no send
    time is known (``stelae serve``, records without attributes) or no previous batch was timed
    (a sequencer's first batch since it started): the ages alone would advise a look before the
    batch can be published, and every writer following it would pay a GET for nothing."""
    if not sent_ms or previous_publish_ms is None:
        return None
    ages = [max(0, now_ms - s) for s in sent_ms]
    advice = int(percentile(ages, PERCENTILE)) + max(0, previous_publish_ms or 0)
    return min(advice, MAX_LOOK_AFTER_MS)
