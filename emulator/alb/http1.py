"""Just enough HTTP/1.1 for the ALB's proxy: parse heads, rewrite them, frame bodies, make error pages.

A reverse proxy needs little of HTTP: where a head ends, how long the body
is (Content-Length, chunked, or until close), whether the connection stays
open, and which headers to add or drop on the way. Doing only that on
bytes (no header objects, the body never parsed, the common head
forwarded with one append) is what makes the proxy fast enough (see
proxy.py). Pure: no I/O.

What it enforces, as ALB does: a malformed request -> 400 from the ALB; a
malformed response, or response headers over 32 KB -> 502; request smuggling
shapes (Transfer-Encoding with Content-Length, conflicting lengths) -> 400.
"""

from __future__ import annotations

import email.utils
import itertools
import random
import re
import time
from dataclasses import dataclass
from http import HTTPStatus

MAX_REQUEST_HEAD = 64 * 1024   # ALB: 64 KB of request headers in all
MAX_RESPONSE_HEAD = 32 * 1024  # ALB: a response with headers over 32 KB is a 502
MAX_CHUNK_LINE = 4096

# Body framing
NO_BODY, LENGTH, CHUNKED, UNTIL_CLOSE = 0, 1, 2, 3

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# Fields after the first line: each is `\r\nname:value`, no whitespace before the
# colon, no bare CR or LF (no smuggling), and the head ends with a blank line.
_FIELDS = rb"(?:\r\n" + _TOKEN + rb":[^\r\n]*)*\r\n\r\n"
_REQUEST = re.compile(rb"(" + _TOKEN + rb") [^\x00-\x20\x7f]+ HTTP/1\.([01])" + _FIELDS)
_RESPONSE = re.compile(rb"HTTP/1\.([01]) ([1-9]\d\d)(?: [^\r\n]*)?" + _FIELDS)
# The few fields the proxy acts on, found in one pass (case-insensitive, as HTTP names are).
_FRAMING_AND_HOP = (rb"content-length|transfer-encoding|connection|keep-alive|proxy-connection|te|trailer|upgrade")
_REQUEST_SPECIAL = re.compile(
    rb"\r\n(" + _FRAMING_AND_HOP + rb"|x-forwarded-for|x-forwarded-proto|x-forwarded-port|x-amzn-trace-id)"
    rb":[ \t]*([^\r\n]*)", re.IGNORECASE)
_RESPONSE_SPECIAL = re.compile(rb"\r\n(" + _FRAMING_AND_HOP + rb"):[ \t]*([^\r\n]*)", re.IGNORECASE)
_DIGITS = re.compile(rb"\d{1,18}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")

# Hop-by-hop headers: meant for one connection, never forwarded.
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"})


class HttpError(Exception):
    """A request or response the proxy can't pass on; `status` is what the ALB answers."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


@dataclass(slots=True)
class RequestHead:
    method: bytes
    minor: int           # HTTP/1.<minor>
    framing: int         # NO_BODY, LENGTH or CHUNKED
    length: int          # for LENGTH
    keep_alive: bool     # the client wants the connection kept
    upstream: bytes      # the head to send the target, X-Forwarded-* added

    @property
    def is_head(self) -> bool:
        return self.method == b"HEAD"


@dataclass(slots=True)
class ResponseHead:
    status: int
    minor: int
    framing: int         # NO_BODY, LENGTH, CHUNKED or UNTIL_CLOSE
    length: int
    reusable: bool       # the target keeps the connection open after this response
    hop_headers: bool    # has Connection/Keep-Alive/...: the client's head must be rebuilt


class Forwarding:
    """The X-Forwarded-* headers for one client connection, prepared once."""

    __slots__ = ("client_ip", "suffix", "host")

    def __init__(self, client_ip: str, listener_port: int, proto: str = "http",
                 listener_host: str = "127.0.0.1") -> None:
        self.client_ip = client_ip.encode("ascii")
        self.suffix = b"X-Forwarded-Proto: %s\r\nX-Forwarded-Port: %d\r\n" % (proto.encode(), listener_port)
        # For HTTP/1.0 requests without Host: ALB adds one naming itself and the listener port.
        self.host = b"Host: %s:%d\r\n" % (listener_host.encode("ascii"), listener_port)


_trace_second = -1
_trace_prefix = b""
_trace_count = itertools.count()


def trace_header() -> bytes:
    """`X-Amzn-Trace-Id: Root=1-<epoch hex>-<24 hex>` and its CRLF.

    The 24 hex digits are 64 random bits drawn once a second and a 32-bit
    counter: unique like AWS's, at a fraction of the cost of 96 random bits
    per request.
    """
    global _trace_second, _trace_prefix
    now = int(time.time())
    if now != _trace_second:
        _trace_second = now
        _trace_prefix = b"X-Amzn-Trace-Id: Root=1-%08x-%016x" % (now, random.getrandbits(64))
    return _trace_prefix + b"%08x\r\n" % (next(_trace_count) & 0xFFFFFFFF)


# --- requests ------------------------------------------------------------------------

def parse_request_head(head: bytes, fwd: Forwarding) -> RequestHead:
    """`head` runs to and includes the blank line; raises HttpError(400) on anything malformed."""
    m = _REQUEST.fullmatch(head)
    if m is None:
        raise HttpError(400, "malformed request")
    special = _REQUEST_SPECIAL.findall(head)
    minor = 1 if m.group(2) == b"1" else 0
    if not special and minor:  # the common case: append our headers, copy nothing else
        return RequestHead(m.group(1), 1, NO_BODY, 0, True, b"".join(
            (head[:-2], b"X-Forwarded-For: ", fwd.client_ip, b"\r\n", fwd.suffix, trace_header(), b"\r\n")))
    fields: dict[bytes, list[bytes]] = {}
    for name, value in special:
        fields.setdefault(name.lower(), []).append(value.rstrip(b" \t"))
    framing, length = NO_BODY, 0
    if b"transfer-encoding" in fields:
        if b"content-length" in fields:
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        if _last_coding(fields[b"transfer-encoding"]) != b"chunked":
            raise HttpError(400, "Transfer-Encoding without chunked last")
        framing = CHUNKED
    elif b"content-length" in fields:
        length = _content_length(fields[b"content-length"])
        framing = LENGTH if length else NO_BODY
    tokens = _tokens(fields.get(b"connection"))
    keep_alive = (b"close" not in tokens) if minor else (b"keep-alive" in tokens)
    trace = b"" if b"x-amzn-trace-id" in fields else trace_header()
    rewrite = not minor or any(name in HOP_BY_HOP or name.startswith(b"x-forwarded-") for name in fields)
    if rewrite:
        upstream = _rewrite_request(head, fwd, tokens, trace)
    else:
        upstream = b"".join((head[:-2], b"X-Forwarded-For: ", fwd.client_ip, b"\r\n", fwd.suffix, trace, b"\r\n"))
    return RequestHead(m.group(1), minor, framing, length, keep_alive, upstream)


def _rewrite_request(head: bytes, fwd: Forwarding, tokens: set[bytes], trace: bytes) -> bytes:
    """Drop hop-by-hop and our own X-Forwarded-Proto/Port, append to X-Forwarded-For, speak HTTP/1.1."""
    line_end = head.find(b"\r\n")
    drop = HOP_BY_HOP | tokens | {b"x-forwarded-proto", b"x-forwarded-port", b"x-forwarded-for"}
    first = head[:line_end]
    if first.endswith(b"HTTP/1.0"):
        first = first[:-3] + b"1.1"
    out = [first, b"\r\n"]
    forwarded_for: list[bytes] = []
    has_host = False
    for line in head[line_end + 2:-4].split(b"\r\n") if len(head) > line_end + 4 else ():
        name, _, value = line.partition(b":")
        lname = name.lower()
        if lname == b"x-forwarded-for":
            forwarded_for.append(value.strip(b" \t"))
        elif lname not in drop:
            has_host = has_host or lname == b"host"
            out += (line, b"\r\n")
    if not has_host:
        out.append(fwd.host)
    forwarded_for.append(fwd.client_ip)
    out += (b"X-Forwarded-For: ", b", ".join(v for v in forwarded_for if v), b"\r\n", fwd.suffix, trace, b"\r\n")
    return b"".join(out)


# --- responses -----------------------------------------------------------------------

def parse_response_head(head: bytes, request_is_head: bool) -> ResponseHead:
    """`head` runs to and includes the blank line; raises HttpError(502) when malformed."""
    m = _RESPONSE.fullmatch(head)
    if m is None:
        raise HttpError(502, "malformed response from the target")
    minor, status = (1 if m.group(1) == b"1" else 0), int(m.group(2))
    special = _RESPONSE_SPECIAL.findall(head)
    if len(special) == 1 and status >= 200 and status != 204 and status != 304 and not request_is_head:
        name, value = special[0]  # the common case: one Content-Length and nothing else to act on
        if name.lower() == b"content-length" and _DIGITS.fullmatch(value):
            length = int(value)
            return ResponseHead(status, minor, LENGTH if length else NO_BODY, length, minor == 1, False)
    fields: dict[bytes, list[bytes]] = {}
    for name, value in special:
        fields.setdefault(name.lower(), []).append(value.rstrip(b" \t"))
    framing, length = UNTIL_CLOSE, 0
    if request_is_head or status < 200 or status in (204, 304):
        framing = NO_BODY
    elif b"transfer-encoding" in fields:
        framing = CHUNKED if _last_coding(fields[b"transfer-encoding"]) == b"chunked" else UNTIL_CLOSE
    elif b"content-length" in fields:
        try:
            length = _content_length(fields[b"content-length"])
        except HttpError:
            raise HttpError(502, "bad Content-Length from the target") from None
        framing = LENGTH if length else NO_BODY
    hop_headers = len(fields) > (b"content-length" in fields) + (b"transfer-encoding" in fields)
    tokens = _tokens(fields.get(b"connection"))
    reusable = framing != UNTIL_CLOSE and ((b"close" not in tokens) if minor else (b"keep-alive" in tokens))
    return ResponseHead(status, minor, framing, length, reusable, hop_headers)


def client_response_head(head: bytes, resp: ResponseHead, *, keep_alive: bool, client_minor: int) -> bytes:
    """The head to send the client: the target's, minus hop-by-hop headers, plus our Connection.

    Returns `head` itself (no copy) in the common case. An HTTP/1.0 client gets
    a chunked body de-chunked (it can't read chunks), delimited by closing.
    """
    dechunk = client_minor == 0 and resp.framing == CHUNKED
    if not resp.hop_headers and not dechunk and client_minor == 1 and (
            keep_alive or resp.status < 200):
        return head
    line_end = head.find(b"\r\n")
    connection = [v.rstrip(b" \t") for name, v in _RESPONSE_SPECIAL.findall(head) if name.lower() == b"connection"]
    drop = HOP_BY_HOP | _tokens(connection)
    if dechunk:
        drop = drop | {b"transfer-encoding"}
    out = [head[:line_end], b"\r\n"]
    for line in head[line_end + 2:-4].split(b"\r\n") if len(head) > line_end + 4 else ():
        if line.partition(b":")[0].lower() not in drop:
            out += (line, b"\r\n")
    if resp.status >= 200:
        out.append(b"Connection: keep-alive\r\n" if keep_alive else b"Connection: close\r\n")
    out.append(b"\r\n")
    return b"".join(out)


# --- helpers --------------------------------------------------------------------------

def _last_coding(values: list[bytes]) -> bytes:
    return b",".join(values).split(b",")[-1].strip(b" \t").lower()


def _content_length(values: list[bytes]) -> int:
    """One Content-Length (repeats must agree), digits only."""
    distinct = {v.strip(b" \t") for raw in values for v in raw.split(b",")}
    if len(distinct) != 1:
        raise HttpError(400, "conflicting Content-Length")
    (value,) = distinct
    if not _DIGITS.fullmatch(value):
        raise HttpError(400, "bad Content-Length")
    return int(value)


def _tokens(values: list[bytes] | None) -> set[bytes]:
    """The comma-separated tokens of Connection's values, lowercase."""
    if not values:
        return set()
    return {t.strip(b" \t").lower() for v in values for t in v.split(b",")} - {b""}


class ChunkedScanner:
    """Follows a chunked body as bytes stream by, to find where it ends.

    The bytes are forwarded as they are; `feed` only tracks chunk sizes (and,
    with `payload`, collects the data for a client that can't read chunks).
    """

    __slots__ = ("_state", "_remaining", "_line")
    _SIZE, _DATA, _DATA_END, _TRAILER = range(4)

    def __init__(self) -> None:
        self._state = self._SIZE
        self._remaining = 0
        self._line = b""

    def feed(self, data: bytes, start: int = 0, payload: list[bytes] | None = None) -> int:
        """Consume `data[start:]`; the index just past the body's end if it ends here, else -1."""
        i, n = start, len(data)
        while i < n:
            if self._state == self._DATA:
                take = min(self._remaining, n - i)
                if payload is not None:
                    payload.append(data[i:i + take])
                i += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = self._DATA_END
                continue
            j = data.find(b"\n", i)
            if j < 0:
                self._line += data[i:]
                if len(self._line) > MAX_CHUNK_LINE:
                    raise HttpError(502, "chunk line too long")
                return -1
            line, self._line = self._line + data[i:j + 1], b""
            i = j + 1
            if not line.endswith(b"\r\n"):
                raise HttpError(502, "bad chunk line ending")
            if self._state == self._SIZE:
                size_text = line[:-2].split(b";", 1)[0].strip(b" \t")
                if not _HEX.fullmatch(size_text):
                    raise HttpError(502, "bad chunk size")
                size = int(size_text, 16)
                if size == 0:
                    self._state = self._TRAILER
                else:
                    self._state, self._remaining = self._DATA, size
            elif self._state == self._DATA_END:
                if line != b"\r\n":
                    raise HttpError(502, "missing CRLF after chunk data")
                self._state = self._SIZE
            elif line == b"\r\n":  # the blank line after the trailers: the body is over
                self._state = self._SIZE
                return i
        return -1


# --- the ALB's own answers ------------------------------------------------------------

ALB_PHRASES = {503: "Service Temporarily Unavailable"}  # ALB's own wording


def error_response(status: int, *, keep_alive: bool) -> bytes:
    """An answer the ALB makes itself, as ALB words it (`Server: awselb/2.0`, its HTML page)."""
    phrase = ALB_PHRASES.get(status) or HTTPStatus(status).phrase
    body = (f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {phrase}</h1></center>\r\n</body>\r\n</html>\r\n").encode()
    head = (f"HTTP/1.1 {status} {phrase}\r\nServer: awselb/2.0\r\n"
            f"Date: {email.utils.formatdate(usegmt=True)}\r\nContent-Type: text/html\r\n"
            f"Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
    return head.encode() + body
