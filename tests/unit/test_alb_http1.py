"""The proxy's HTTP/1.1 on bytes: heads parsed and rewritten as ALB does, bodies framed, error pages."""

from __future__ import annotations

import re

import pytest

from emulator.alb import http1
from emulator.alb.http1 import (CHUNKED, LENGTH, NO_BODY, UNTIL_CLOSE, ChunkedScanner, Forwarding, HttpError,
                                client_response_head, error_response, parse_request_head, parse_response_head)
from emulator.alb.stats import TargetGroupStats

FWD = Forwarding("192.0.2.7", 8080)


def req(text: str):
    return parse_request_head(text.encode().replace(b"\n", b"\r\n"), FWD)


def headers_of(upstream: bytes) -> list[tuple[str, str]]:
    lines = upstream.decode().split("\r\n")[1:-2]
    return [(name.lower(), value.strip()) for name, _, value in (line.partition(":") for line in lines)]


def test_common_request_gets_forwarded_headers_appended():
    r = req("GET /a?b=1 HTTP/1.1\nHost: example\nUser-Agent: hey\n\n")
    assert (r.method, r.minor, r.framing, r.keep_alive) == (b"GET", 1, NO_BODY, True)
    assert r.upstream.startswith(b"GET /a?b=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: hey\r\n")
    h = dict(headers_of(r.upstream))
    assert h["x-forwarded-for"] == "192.0.2.7"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-port"] == "8080"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", h["x-amzn-trace-id"])
    assert r.upstream.endswith(b"\r\n\r\n")


def test_existing_forwarded_for_is_appended_to_and_proto_port_replaced():
    r = req("GET / HTTP/1.1\nHost: h\nX-Forwarded-For: 203.0.113.1\nX-Forwarded-Proto: https\n"
            "X-Forwarded-Port: 443\nX-Amzn-Trace-Id: Root=1-abc\n\n")
    h = headers_of(r.upstream)
    assert ("x-forwarded-for", "203.0.113.1, 192.0.2.7") in h
    assert [v for k, v in h if k == "x-forwarded-proto"] == ["http"]
    assert [v for k, v in h if k == "x-forwarded-port"] == ["8080"]
    assert [v for k, v in h if k == "x-amzn-trace-id"] == ["Root=1-abc"]  # an existing trace id is kept


def test_hop_by_hop_headers_are_not_forwarded():
    r = req("GET / HTTP/1.1\nHost: h\nConnection: keep-alive, X-Secret\nKeep-Alive: timeout=5\n"
            "X-Secret: 1\nUpgrade: websocket\nTE: trailers\nAccept: */*\n\n")
    names = [k for k, _ in headers_of(r.upstream)]
    assert "connection" not in names and "keep-alive" not in names and "upgrade" not in names
    assert "x-secret" not in names and "te" not in names
    assert "accept" in names and r.keep_alive


@pytest.mark.parametrize("text, keep_alive", [
    ("GET / HTTP/1.1\nHost: h\n\n", True),
    ("GET / HTTP/1.1\nHost: h\nConnection: close\n\n", False),
    ("GET / HTTP/1.0\n\n", False),
    ("GET / HTTP/1.0\nConnection: Keep-Alive\n\n", True),
], ids=["1.1-default", "1.1-close", "1.0-default", "1.0-keep-alive"])
def test_client_keep_alive(text, keep_alive):
    assert req(text).keep_alive is keep_alive


def test_http10_request_goes_to_the_target_as_http11():
    assert req("GET / HTTP/1.0\nHost: h\n\n").upstream.startswith(b"GET / HTTP/1.1\r\n")


@pytest.mark.parametrize("text, framing, length", [
    ("POST / HTTP/1.1\nContent-Length: 12\n\n", LENGTH, 12),
    ("POST / HTTP/1.1\ncontent-length: 0\n\n", NO_BODY, 0),
    ("POST / HTTP/1.1\nContent-Length: 5\nContent-Length: 5\n\n", LENGTH, 5),
    ("POST / HTTP/1.1\nTransfer-Encoding: gzip, chunked\n\n", CHUNKED, 0),
], ids=["length", "zero", "repeated-equal", "chunked-last"])
def test_request_body_framing(text, framing, length):
    r = req(text)
    assert (r.framing, r.length) == (framing, length)


@pytest.mark.parametrize("text", [
    "GET / HTTP/1.1\nHost : h\n\n",
    "GET / HTTP/2.0\n\n",
    "GET /\n\n",
    "GET / HTTP/1.1\nNoColon\n\n",
    "POST / HTTP/1.1\nContent-Length: 5\nContent-Length: 6\n\n",
    "POST / HTTP/1.1\nContent-Length: -1\n\n",
    "POST / HTTP/1.1\nContent-Length: 5\nTransfer-Encoding: chunked\n\n",
    "POST / HTTP/1.1\nTransfer-Encoding: chunked, gzip\n\n",
], ids=["space-before-colon", "version", "no-version", "no-colon", "conflicting-length", "negative-length",
        "te-and-cl", "chunked-not-last"])
def test_malformed_requests_are_400(text):
    with pytest.raises(HttpError) as info:
        req(text)
    assert info.value.status == 400


def test_bare_lf_inside_a_header_is_400():
    with pytest.raises(HttpError):
        parse_request_head(b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", FWD)


def resp(text: str, head_request: bool = False):
    return parse_response_head(text.encode().replace(b"\n", b"\r\n"), head_request)


@pytest.mark.parametrize("text, head_request, framing, length, reusable", [
    ("HTTP/1.1 200 OK\nContent-Length: 2\n\n", False, LENGTH, 2, True),
    ("HTTP/1.1 200 OK\nContent-Length: 2\n\n", True, NO_BODY, 0, True),
    ("HTTP/1.1 204 No Content\n\n", False, NO_BODY, 0, True),
    ("HTTP/1.1 304 Not Modified\nContent-Length: 10\n\n", False, NO_BODY, 0, True),
    ("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n", False, CHUNKED, 0, True),
    ("HTTP/1.1 200 OK\n\n", False, UNTIL_CLOSE, 0, False),
    ("HTTP/1.1 200 OK\nContent-Length: 2\nConnection: close\n\n", False, LENGTH, 2, False),
    ("HTTP/1.0 200 OK\nContent-Length: 2\n\n", False, LENGTH, 2, False),
    ("HTTP/1.0 200 OK\nContent-Length: 2\nConnection: keep-alive\n\n", False, LENGTH, 2, True),
    ("HTTP/1.1 100 Continue\n\n", False, NO_BODY, 0, True),
    ("HTTP/1.1 200\nContent-Length: 1\n\n", False, LENGTH, 1, True),
], ids=["length", "head", "204", "304", "chunked", "until-close", "close", "1.0", "1.0-keep-alive",
        "interim", "no-reason-phrase"])
def test_response_framing(text, head_request, framing, length, reusable):
    r = resp(text, head_request)
    assert (r.framing, r.length, r.reusable) == (framing, length, reusable)


@pytest.mark.parametrize("text", ["garbage\n\n", "HTTP/1.1 2000 OK\n\n", "HTTP/1.1 200 OK\nBad Header\n\n",
                                  "HTTP/1.1 200 OK\nContent-Length: x\n\n", "SSH-2.0-OpenSSH\n\n"])
def test_malformed_responses_are_502(text):
    with pytest.raises(HttpError) as info:
        resp(text)
    assert info.value.status == 502


def test_client_head_is_the_targets_own_in_the_common_case():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
    assert client_response_head(head, parse_response_head(head, False), keep_alive=True, client_minor=1) is head


def test_client_head_drops_hop_headers_and_says_close():
    head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\n"
    out = client_response_head(head, parse_response_head(head, False), keep_alive=False, client_minor=1)
    assert out == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"


def test_http10_client_gets_chunked_body_without_transfer_encoding():
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    out = client_response_head(head, parse_response_head(head, False), keep_alive=False, client_minor=0)
    assert out == b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"


CHUNKED_BODY = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"


@pytest.mark.parametrize("split", range(1, len(CHUNKED_BODY)))
def test_chunked_scanner_finds_the_end_wherever_the_bytes_split(split):
    scanner, payload = ChunkedScanner(), []
    assert scanner.feed(CHUNKED_BODY[:split], 0, payload) == -1
    tail = CHUNKED_BODY[split:] + b"GET / HTTP/1.1\r\n"
    assert scanner.feed(tail, 0, payload) == len(CHUNKED_BODY) - split
    assert b"".join(payload) == b"hello world"


@pytest.mark.parametrize("body", [b"zz\r\n", b"5\r\nhelloXX\r\n", b"5\nhello"], ids=["size", "crlf", "bare-lf"])
def test_chunked_scanner_rejects_malformed(body):
    with pytest.raises(HttpError):
        ChunkedScanner().feed(body)


@pytest.mark.parametrize("status, phrase", [(502, "Bad Gateway"), (503, "Service Temporarily Unavailable"),
                                            (504, "Gateway Timeout"), (400, "Bad Request")])
def test_error_pages_look_like_albs(status, phrase):
    raw = error_response(status, keep_alive=True)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"\r\nServer: awselb/2.0\r\n" in head and b"Content-Type: text/html" in head
    assert int(re.search(rb"Content-Length: (\d+)", head).group(1)) == len(body)
    assert body.startswith(f"<html>\r\n<head><title>{status} {phrase}</title></head>".encode())
    assert f"<center><h1>{status} {phrase}</h1></center>".encode() in body


def test_stats_count_as_cloudwatch_does():
    stats = TargetGroupStats()
    stats.record_request("a:1")
    stats.record_request("a:1")
    stats.record_target_response(200, 0.002)
    stats.record_target_response(503, 0.2)
    stats.record_elb_response(502)
    stats.record_elb_response(503)
    snap = stats.snapshot()
    assert snap["RequestCount"] == 2 and snap["RequestCountPerTarget"] == {"a:1": 2}
    assert snap["HTTPCode_Target_2XX_Count"] == 1 and snap["HTTPCode_Target_5XX_Count"] == 1
    assert snap["HTTPCode_ELB_5XX_Count"] == 2 and snap["HTTPCode_ELB_502_Count"] == 1
    assert snap["TargetResponseTime"]["count"] == 2
    assert snap["TargetResponseTime"]["sum"] == pytest.approx(0.202)
    merged = TargetGroupStats.from_wire(stats.to_wire())
    merged.merge(stats.take())
    assert merged.snapshot()["RequestCount"] == 4 and stats.request_count == 0
    assert merged.snapshot()["HTTPCode_ELB_5XX_Count"] == 4


def test_trace_ids_differ():
    assert http1.trace_header() != http1.trace_header()
