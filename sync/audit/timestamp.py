"""RFC 3161 time-stamping of checkpoints: an outside authority signs "this hash existed at
this time", so not even the key holder can later date a rewritten chain back.

The request is a few fixed DER structures, built here; the response is read only as far as
its status, the token, and the token's imprint, nonce and time, which :meth:`stamp` checks
against the request. Verifying the token's signature and certificate chain is left to
OpenSSL's ``ts -verify`` (:func:`verify_token`), the reference implementation, rather than
re-implemented.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sync.errors import AuditError

_SHA256 = bytes.fromhex("0609608648016503040201")  # OID 2.16.840.1.101.3.4.2.1
_SEQUENCE, _INTEGER, _OCTETS, _BOOLEAN, _NULL = 0x30, 0x02, 0x04, 0x01, 0x05
_GENERALIZED_TIME, _EXPLICIT_0 = 0x18, 0xA0
_GRANTED = (0, 1)  # granted, grantedWithMods


@dataclass(frozen=True, slots=True)
class TimeStamp:
    token: bytes
    time: datetime


class TimeStampAuthority:
    """A TSA reached over HTTP (``application/timestamp-query``)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout

    def stamp(self, data: bytes) -> TimeStamp:
        """The TSA's token over SHA-256 of ``data``; raises :class:`AuditError` when it
        refuses, cannot be reached, or answers for another hash or nonce."""
        digest = hashlib.sha256(data).digest()
        nonce = secrets.randbits(63)
        request = urllib.request.Request(
            self.url,
            data=timestamp_request(digest, nonce),
            headers={"Content-Type": "application/timestamp-query"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                body = answer.read()
        except OSError as exc:
            raise AuditError(f"time-stamping authority {self.url}: {exc}") from None
        try:
            token = token_of_response(body)
            imprint, answered_nonce, when = read_token(token)
        except ValueError as exc:
            raise AuditError(f"time-stamping authority {self.url}: {exc}") from None
        if imprint != digest or answered_nonce != nonce:
            raise AuditError(f"time-stamping authority {self.url} stamped another request")
        return TimeStamp(token, when)


def timestamp_request(digest: bytes, nonce: int) -> bytes:
    """TimeStampReq: version 1, the SHA-256 imprint, a nonce, and the TSA's certificate
    asked for (so a verifier needs only the CA)."""
    algorithm = _tlv(_SEQUENCE, _SHA256 + _tlv(_NULL, b""))
    imprint = _tlv(_SEQUENCE, algorithm + _tlv(_OCTETS, digest))
    body = _integer(1) + imprint + _integer(nonce) + _tlv(_BOOLEAN, b"\xff")
    return _tlv(_SEQUENCE, body)


def token_of_response(response: bytes) -> bytes:
    """The TimeStampToken of a granted TimeStampResp."""
    parts = _children(_value(response, _SEQUENCE))
    status = _children(_value(parts[0], _SEQUENCE))
    code = int.from_bytes(_value(status[0], _INTEGER), "big")
    if code not in _GRANTED:
        raise ValueError(f"the request was refused (PKIStatus {code})")
    if len(parts) < 2:
        raise ValueError("a granted response without a token")
    return parts[1]


def read_token(token: bytes) -> tuple[bytes, int | None, datetime]:
    """The hashed message, nonce and time of a token's TSTInfo (not its signature)."""
    content_info = _children(_value(token, _SEQUENCE))
    signed_data = _children(_value(_children(_value(content_info[1], _EXPLICIT_0))[0], _SEQUENCE))
    encapsulated = _children(_value(signed_data[2], _SEQUENCE))
    tst_der = _value(_children(_value(encapsulated[1], _EXPLICIT_0))[0], _OCTETS)
    tst = _children(_value(tst_der, _SEQUENCE))
    imprint = _value(_children(_value(tst[2], _SEQUENCE))[1], _OCTETS)
    when = _generalized_time(_value(tst[4], _GENERALIZED_TIME))
    nonce = next(
        (int.from_bytes(_value(p, _INTEGER), "big") for p in tst[5:] if p[0] == _INTEGER), None
    )
    return imprint, nonce, when


def verify_token(token: bytes, data: bytes, ca_file: Path) -> str | None:
    """None when ``token`` is a valid time-stamp over SHA-256 of ``data`` by a TSA whose
    certificate chains to ``ca_file``; otherwise why not."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise AuditError("checking time-stamp tokens needs the openssl command on PATH")
    with tempfile.NamedTemporaryFile(suffix=".tst") as file:
        file.write(token)
        file.flush()
        command = [openssl, "ts", "-verify", "-token_in", "-in", file.name]
        command += ["-CAfile", str(ca_file), "-digest", hashlib.sha256(data).hexdigest()]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
        )
    if done.returncode == 0 and "Verification: OK" in done.stdout:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    last = lines[-1] if lines else "openssl failed"
    parts = last.split(":")  # openssl 3: id:error:code:library:function:reason:file:line:
    return "its time-stamp token does not verify: " + (parts[5] if len(parts) > 6 else last)


def _tlv(tag: int, value: bytes) -> bytes:
    size = len(value)
    if size < 0x80:
        return bytes([tag, size]) + value
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + value


def _integer(value: int) -> bytes:
    return _tlv(_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _read(data: bytes, at: int) -> tuple[int, int, int]:
    """The tag, value start and value end of the element at ``at``."""
    if at + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[at], data[at + 1]
    start = at + 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise ValueError("unsupported DER length")
        size = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + size > len(data):
        raise ValueError("truncated DER")
    return tag, start, start + size


def _value(element: bytes, tag: int) -> bytes:
    """The value of one whole element, which must have ``tag``."""
    found, start, end = _read(element, 0)
    if found != tag:
        raise ValueError(f"expected DER tag {tag:#x}, found {found:#x}")
    return element[start:end]


def _children(value: bytes) -> list[bytes]:
    """The whole elements (tag, length and value) inside a constructed value."""
    items, at = [], 0
    while at < len(value):
        _, _, end = _read(value, at)
        items.append(value[at:end])
        at = end
    return items


def _generalized_time(value: bytes) -> datetime:
    text = value.decode("ascii")
    if not text.endswith("Z"):
        raise ValueError(f"a time-stamp time without Z: {text!r}")
    main, _, fraction = text[:-1].partition(".")
    moment = datetime.strptime(main, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return moment.replace(microsecond=int((fraction + "000000")[:6])) if fraction else moment
