"""The right edge of a Merkle tree: O(log n) state that is enough to append and to get the root.

A tree of size ``n`` decomposes into perfect subtrees, one per set bit of ``n``, largest (leftmost)
first. Appending a leaf merges equal-height subtrees like a binary counter, so a sequencer grows the
tree without ever re-hashing it, and recovers that state from at most one tile per level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from stelae.tiles.errors import FormatError
from stelae.tiles.hashing import EMPTY_ROOT, HASH_SIZE, node_hash

NodeSink = Callable[[int, int, bytes], None]
"""Receives ``(level, index, hash)`` for each perfect node as it becomes complete."""


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """Decompose the leaf range [start, end) into maximal aligned perfect subtrees, left to right.

    Each item is ``(level, index)``, the node over leaves ``[index << level, (index+1) << level)``.
    For ``start == 0`` this is the compact range of a tree of size ``end``.
    """
    if not 0 <= start <= end:
        raise ValueError(f"bad range [{start}, {end})")
    out: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        # The largest aligned block starting at pos that fits in the range.
        level = (pos & -pos).bit_length() - 1 if pos else (end - pos).bit_length() - 1
        while (1 << level) > end - pos:
            level -= 1
        out.append((level, pos >> level))
        pos += 1 << level
    return out


@dataclass(frozen=True)
class RightEdge:
    """The compact range [0, size): hashes of the perfect subtrees, largest first.

    Invariant: ``len(hashes) == bin(size).count("1")`` and hash i covers the i-th set bit of
    ``size`` counted from the most significant end.
    """

    size: int
    hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if self.size < 0:
            raise FormatError(f"tree size {self.size} is negative")
        if len(self.hashes) != self.size.bit_count():
            raise FormatError(
                f"a tree of size {self.size} has {self.size.bit_count()} right-edge hashes, "
                f"not {len(self.hashes)}"
            )
        for h in self.hashes:
            if len(h) != HASH_SIZE:
                raise FormatError(f"right-edge hash of {len(h)} bytes, want {HASH_SIZE}")

    @classmethod
    def empty(cls) -> RightEdge:
        return cls(0, ())

    def levels(self) -> list[int]:
        """The height of each subtree in ``hashes``, largest first."""
        return [b for b in range(self.size.bit_length() - 1, -1, -1) if self.size >> b & 1]

    def append(self, leaf_hashes: Iterable[bytes]) -> RightEdge:
        """The right edge after appending ``leaf_hashes`` (already leaf-hashed)."""
        size = self.size
        stack = list(self.hashes)
        for leaf in leaf_hashes:
            if len(leaf) != HASH_SIZE:
                raise FormatError(f"leaf hash of {len(leaf)} bytes, want {HASH_SIZE}")
            # Merge while the lowest subtree has the same height as the new one (carry).
            h = leaf
            carry = size
            while carry & 1:
                h = node_hash(stack.pop(), h)
                carry >>= 1
            stack.append(h)
            size += 1
        return RightEdge(size, tuple(stack))

    def append_with_nodes(
        self, leaf_hashes: Sequence[bytes], on_node: NodeSink, *, stride: int = 1
    ) -> RightEdge:
        """Like :meth:`append`, also reporting every perfect node completed on the way.

        ``on_node(level, index, hash)`` is called for each leaf (level 0) and each interior node
        that becomes complete, in the order they complete, at levels that are multiples of
        ``stride`` (the tile builder asks only for the levels tiles store: every 8th).
        """
        size = self.size
        stack = list(self.hashes)
        for leaf in leaf_hashes:
            h = leaf
            index = size
            level = 0
            on_node(0, index, h)
            carry = size
            while carry & 1:
                h = node_hash(stack.pop(), h)
                carry >>= 1
                level += 1
                index >>= 1
                if level % stride == 0:
                    on_node(level, index, h)
            stack.append(h)
            size += 1
        return RightEdge(size, tuple(stack))

    def root(self) -> bytes:
        """The RFC 6962 root of the tree: fold the subtrees right to left."""
        if not self.hashes:
            return EMPTY_ROOT
        acc = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            acc = node_hash(h, acc)
        return acc
