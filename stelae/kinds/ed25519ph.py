"""Ed25519ph (RFC 8032 §5.1, prehash variant, empty context) in pure Python.

Sigstore signs hashedrekord entries with Ed25519 keys as Ed25519ph over the SHA-512 digest
(keyDetails ``PKIX_ED25519_PH``), and Rekor verifies them that way. ``cryptography`` implements only
pure Ed25519, so this module does the curve arithmetic itself. Verification handles public data
only; :func:`sign` is not constant-time and is meant for test material and local CLI use.

Verification is cofactorless, like Go's crypto/ed25519: it recomputes R' = [S]B - [k]A and compares
its encoding with R; S must be reduced (S < L).
"""

from __future__ import annotations

import hashlib

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_DOM2 = b"SigEd25519 no Ed25519 collisions" + bytes([1, 0])  # phflag=1, empty context

_Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)


def _add(p: _Point, q: _Point) -> _Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s: int, p: _Point) -> _Point:
    q: _Point = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
assert _GX is not None
_G: _Point = (_GX, _GY, 1, _GX * _GY % _P)


def _encode(p: _Point) -> bytes:
    zinv = pow(p[2], _P - 2, _P)
    x, y = p[0] * zinv % _P, p[1] * zinv % _P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _decode(s: bytes) -> _Point | None:
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


def _h(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little") % _L


def verify(public_key: bytes, signature: bytes, digest: bytes) -> bool:
    """Whether ``signature`` is an Ed25519ph signature over the SHA-512 ``digest``.

    Returns a bool because it is a primitive; callers turn False into a typed error.
    """
    if len(public_key) != 32 or len(signature) != 64 or len(digest) != 64:
        return False
    a = _decode(public_key)
    r = _decode(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    k = _h(_DOM2, signature[:32], public_key, digest)
    neg_a: _Point = ((_P - a[0]) % _P, a[1], a[2], (_P - a[3]) % _P)
    check = _add(_mul(s, _G), _mul(k, neg_a))
    return _encode(check) == signature[:32]


def sign(seed: bytes, digest: bytes) -> bytes:
    """Ed25519ph signature with the 32-byte private ``seed`` over the SHA-512 ``digest``."""
    if len(seed) != 32 or len(digest) != 64:
        raise ValueError("Ed25519ph needs a 32-byte seed and a 64-byte SHA-512 digest")
    h = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(h[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    public = _encode(_mul(scalar, _G))
    r = _h(_DOM2, h[32:], digest)
    big_r = _encode(_mul(r, _G))
    s = (r + _h(_DOM2, big_r, public, digest) * scalar) % _L
    return big_r + int.to_bytes(s, 32, "little")
