"""One client connection of a listener, and the HTTP exchanges on it (see proxy.py for the why).

A client connection carries one request at a time to a target over a pooled
upstream connection: the request head is parsed and rewritten (http1.py),
the body framed and forwarded as it arrives, the response head checked and
passed on (as it came, when nothing needs changing), the response body
forwarded as it arrives, and the upstream connection returned to the pool
when the response ends cleanly. Pipelined requests wait their turn. Flow
control goes both ways: a side that can't keep up pauses reading on the
other. The ALB's own answers (400, 502, 503, 504) are made here.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from . import balancer as b
from .balancer import TargetState
from .http1 import (CHUNKED, LENGTH, MAX_REQUEST_HEAD, MAX_RESPONSE_HEAD, NO_BODY, UNTIL_CLOSE, ChunkedScanner,
                    Forwarding, HttpError, RequestHead, ResponseHead, client_response_head, error_response,
                    parse_request_head, parse_response_head)
from .upstream import Upstream

if TYPE_CHECKING:  # pragma: no cover
    from .proxy import Listener

MAX_PIPELINED = 256 * 1024  # bytes of pipelined requests held before the client is paused
_perf = time.perf_counter


class ClientConnection(asyncio.Protocol):
    """One client connection; at most one request of it is with a target at a time.

    The exchange's fields are all set when a request is dispatched, so ending
    one only drops the references (the hot path allocates and resets little).
    """

    __slots__ = ("listener", "transport", "fwd", "inbuf", "busy", "closed", "idle_ticks", "gen",
                 "req", "ts", "up", "req_done", "req_remaining", "req_scanner", "outbox", "retried",
                 "resp", "resp_buf", "resp_remaining", "resp_scanner", "keep_alive", "t_sent",
                 "paused_up", "paused_pipe", "write_paused")

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.transport: Any = None
        self.inbuf = b""
        self.busy = self.closed = False
        self.idle_ticks = 0
        self.gen = 0
        self.paused_up = self.paused_pipe = self.write_paused = False
        self.req: RequestHead | None = None
        self.ts: TargetState | None = None
        self.up: Upstream | None = None
        self.req_done = True
        self.req_remaining = 0
        self.req_scanner: ChunkedScanner | None = None
        self.outbox: list[bytes] | None = None
        self.retried = False
        self.resp: ResponseHead | None = None
        self.resp_buf = b""
        self.resp_remaining = 0
        self.resp_scanner: ChunkedScanner | None = None
        self.keep_alive = True
        self.t_sent = 0.0

    # --- the client's side -------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.fwd = Forwarding(peer[0] if peer else "127.0.0.1", self.listener.port,
                              listener_host=self.listener.host)
        self.listener.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.listener.clients.discard(self)
        if self.busy:  # the client left mid-exchange: the target's answer has nowhere to go
            up, self.up = self.up, None
            if up is not None:
                up.client = None
                up.close()
            self._end_exchange()

    def data_received(self, data: bytes) -> None:
        self.idle_ticks = 0
        if self.busy:
            if not self.req_done:
                data = self._request_body(data)
            if data:
                self.inbuf += data
                if len(self.inbuf) > MAX_PIPELINED:
                    self.paused_pipe = True
                    self.transport.pause_reading()
            return
        if self.inbuf:
            data, self.inbuf = self.inbuf + data, b""
        self._serve(data)

    def eof_received(self) -> bool:
        # A half-closed client may still want its answer; close once it is sent.
        self.keep_alive = False
        return self.busy

    def pause_writing(self) -> None:  # the client reads slower than the target sends
        self.write_paused = True
        if self.up is not None:
            self.up.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.up is not None:
            self.up.transport.resume_reading()

    def pause_reading_for_upstream(self, paused: bool) -> None:
        self.paused_up = paused
        self._update_reading()

    def _update_reading(self) -> None:
        if self.closed:
            return
        if self.paused_up or self.paused_pipe:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    # --- requests ---------------------------------------------------------------------------

    def _serve(self, data: bytes) -> None:
        """Start the request at the front of `data`; the ALB's own answers loop to the next one."""
        while data and not self.busy and not self.closed:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > MAX_REQUEST_HEAD:
                    self._reply(400, keep_alive=False)
                else:
                    self.inbuf = data
                return
            cut = end + 4
            head, data = (data, b"") if cut == len(data) else (data[:cut], data[cut:])
            try:
                req = parse_request_head(head, self.fwd)
            except HttpError as exc:
                self._reply(exc.status, keep_alive=False)
                return
            data = self._dispatch(req, data)

    def _dispatch(self, req: RequestHead, rest: bytes) -> bytes:
        """Send `req` to a target; returns the bytes after it when the ALB answered at once."""
        listener = self.listener
        runtime = listener.runtime
        ts = runtime.choose()
        if ts is None:  # no registered targets: ALB's 503, not counted in RequestCount
            runtime.stats.record_elb_response(503)
            keep = req.keep_alive and req.framing == NO_BODY
            self._reply(503, keep_alive=keep)
            return rest if keep else b""
        runtime.stats.record_request(ts.target_id)
        ts.in_flight += 1
        self.busy = True
        self.gen += 1
        self.req, self.ts = req, ts
        self.keep_alive = req.keep_alive
        self.outbox, self.retried = None, False
        self.resp, self.resp_buf = None, b""
        framing = req.framing
        if framing == NO_BODY:
            self.req_done = True
            payload = req.upstream
        elif framing == LENGTH:
            n = req.length
            body, rest = (rest, b"") if len(rest) <= n else (rest[:n], rest[n:])
            self.req_remaining = n - len(body)
            self.req_done = self.req_remaining == 0
            payload = req.upstream + body
        else:
            self.req_scanner = scanner = ChunkedScanner()
            try:
                end = scanner.feed(rest)
            except HttpError:
                self.req_done = False
                self._fail(400)
                return b""
            self.req_done = end >= 0
            body, rest = (rest, b"") if end < 0 else (rest[:end], rest[end:])
            payload = req.upstream + body
        if rest:
            self.inbuf += rest
        up = listener.pool.acquire(ts)
        if up is not None:
            self._attach(up, payload)
        else:
            self.up = None
            self.outbox = [payload]
            asyncio.get_running_loop().create_task(self._connect(ts, self.gen))
        return b""

    def _request_body(self, data: bytes) -> bytes:
        """Forward request body bytes; returns what follows the body (a pipelined request)."""
        if self.req.framing == LENGTH:  # type: ignore[union-attr]
            n = self.req_remaining
            body, rest = (data, b"") if len(data) <= n else (data[:n], data[n:])
            self.req_remaining = n - len(body)
            done = self.req_remaining == 0
        else:
            try:
                end = self.req_scanner.feed(data)  # type: ignore[union-attr]
            except HttpError:
                self._fail(400)
                return b""
            done = end >= 0
            body, rest = (data, b"") if not done else (data[:end], data[end:])
        if self.up is not None:
            self.up.transport.write(body)
        elif self.outbox is not None:
            self.outbox.append(body)
        self.req_done = done
        return rest

    def _attach(self, up: Upstream, payload: bytes) -> None:
        self.up = up
        up.client = self
        up.uses += 1
        if self.write_paused:
            up.transport.pause_reading()
        self.t_sent = _perf()
        up.transport.write(payload)

    async def _connect(self, ts: TargetState, gen: int) -> None:
        pool = self.listener.pool
        try:
            up = await pool.connect(ts)
        except (asyncio.TimeoutError, TimeoutError):
            if self.gen == gen and self.busy:
                self._fail(504)
            return
        except OSError:
            if self.gen == gen and self.busy:
                self._fail(502)
            return
        if self.gen != gen or not self.busy or self.closed:
            pool.release(up)  # the exchange is over (client gone, timed out): keep it for the next
            return
        payload = b"".join(self.outbox or ())
        self.outbox = None
        self._attach(up, payload)

    # --- responses ----------------------------------------------------------------------------

    def upstream_data(self, data: bytes) -> None:
        """Bytes from the target: the response head (and maybe its body), or more body."""
        self.idle_ticks = 0
        if self.resp is not None:
            self._response_body(data, 0, b"", 0)
            return
        if self.resp_buf:
            data, self.resp_buf = self.resp_buf + data, b""
        start = 0
        req = self.req
        while True:
            end = data.find(b"\r\n\r\n", start)
            if end < 0:
                if len(data) - start > MAX_RESPONSE_HEAD:
                    self._fail(502)
                else:
                    self.resp_buf = data[start:]
                return
            head = data if (start == 0 and end + 4 == len(data)) else data[start:end + 4]
            try:
                resp = parse_response_head(head, req.method == b"HEAD")  # type: ignore[union-attr]
            except HttpError:
                self._fail(502)
                return
            if resp.status >= 200:
                break
            if resp.status == 101:  # no upgrades: the Upgrade header was never forwarded
                self._fail(502)
                return
            if req.minor == 1:  # type: ignore[union-attr]  # 100 Continue passes to HTTP/1.1 clients
                self.transport.write(head)
            start = end + 4
        self.resp = resp
        self.listener.runtime.stats.record_target_response(resp.status, _perf() - self.t_sent)
        framing = resp.framing
        minor = req.minor  # type: ignore[union-attr]
        keep = self.keep_alive and framing != UNTIL_CLOSE and (minor == 1 or framing != CHUNKED)
        self.keep_alive = keep
        if framing == LENGTH:
            self.resp_remaining = resp.length
        elif framing == CHUNKED:
            self.resp_scanner = ChunkedScanner()
        if keep and minor == 1 and not resp.hop_headers:  # the target's head is fine as it is
            if start == 0 and framing == LENGTH and len(data) - end - 4 == resp.length:
                self.transport.write(data)  # the whole answer in one piece: pass it on as it came
                self._finish(resp.reusable)
            elif start == 0:
                self._response_body(data, end + 4, b"", 0)  # head and body in one write, no copy
            else:
                self._response_body(data, end + 4, head, -1)
        else:
            out = client_response_head(head, resp, keep_alive=keep, client_minor=minor)
            self._response_body(data, end + 4, out, -1)

    def _response_body(self, data: bytes, pos: int, prefix: bytes, write_from: int) -> None:
        """Forward the body bytes in `data[pos:]`; finish the exchange at the body's end.

        What is written: `prefix` then `data[pos:end]`; or, with `write_from` >= 0,
        `data[write_from:end]` (the target's own head is already in `data`).
        """
        resp = self.resp
        framing, size = resp.framing, len(data)  # type: ignore[union-attr]
        if framing == LENGTH:
            if size - pos < self.resp_remaining:
                self.resp_remaining -= size - pos
                end, done = size, False
            else:
                end, done = pos + self.resp_remaining, True
                self.resp_remaining = 0
        elif framing == CHUNKED:
            dechunk: list[bytes] | None = [] if self.req.minor == 0 else None  # type: ignore[union-attr]
            try:
                found = self.resp_scanner.feed(data, pos, dechunk)  # type: ignore[union-attr]
            except HttpError:
                self._fail(502)
                return
            done = found >= 0
            end = found if done else size
            if dechunk is not None:
                clean = found == size
                data, pos, end, size, write_from = b"".join(dechunk), 0, -1, -1 if clean else -2, -1
        elif framing == NO_BODY:
            end, done = pos, True
        else:  # until the target closes
            end, done = size, False
        if write_from >= 0:
            chunk = data if (write_from == 0 and end == size) else data[write_from:end]
        elif end < 0:  # de-chunked
            chunk = prefix + data
        else:
            chunk = prefix + data[pos:end] if prefix else data[pos:end]
        if chunk:
            self.transport.write(chunk)
        if done:
            self._finish(resp.reusable and end == size)  # type: ignore[union-attr]

    def upstream_lost(self, up: Upstream) -> None:
        """The target's connection closed under this exchange."""
        if up is not self.up:
            return
        self.up = None
        resp = self.resp
        if resp is None:
            req, ts = self.req, self.ts
            if (up.uses > 1 and not self.retried and not self.resp_buf and req is not None
                    and req.framing == NO_BODY and ts is not None and ts.state in b.REGISTERED_STATES):
                # A pooled connection the target had closed while idle: try once on a fresh one.
                self.retried = True
                self.outbox = [req.upstream]
                asyncio.get_running_loop().create_task(self._connect(ts, self.gen))
                return
            self._fail(502)
        elif resp.framing == UNTIL_CLOSE:
            self.keep_alive = False
            self._finish(False)
        else:  # cut mid-body: the client must see the failure, not a short body
            self.keep_alive = False
            self._finish(False)
            self.transport.abort()

    # --- ending an exchange ------------------------------------------------------------------

    def _fail(self, status: int) -> None:
        """The ALB answers `status` itself (or cuts the client if an answer already started)."""
        if not self.busy:
            return
        up, self.up = self.up, None
        if up is not None:
            up.client = None
            up.close()
        if self.resp is not None:
            self.keep_alive = False
            self._finish(False)
            self.transport.abort()
            return
        self.listener.runtime.stats.record_elb_response(status)
        keep = self.keep_alive and self.req_done
        self.keep_alive = keep
        if not self.closed:
            self.transport.write(error_response(status, keep_alive=keep))
        self._finish(False)

    def _finish(self, reusable: bool) -> None:
        """The response is complete: return the connection, then serve what the client sent next."""
        up, ts = self.up, self.ts
        if up is not None:
            self.up = up.client = None
            if reusable and self.req_done and not up.closed and ts.state != b.DRAINING:  # type: ignore[union-attr]
                if self.write_paused:
                    up.transport.resume_reading()
                self.listener.pool.release(up)
            else:
                up.close()
        self.busy = False
        self.req = self.ts = self.resp = None
        if ts is not None:
            ts.in_flight -= 1
            if ts.in_flight <= 0 and ts.state == b.DRAINING:
                self.listener.runtime.request_done(ts)
        if self.closed:
            return
        if not self.keep_alive or not self.req_done:
            self.transport.close()
            self.closed = True
            return
        if self.paused_pipe or self.paused_up:
            self.paused_pipe = self.paused_up = False
            self._update_reading()
        if self.inbuf:
            data, self.inbuf = self.inbuf, b""
            self._serve(data)

    def _end_exchange(self) -> None:
        ts = self.ts
        self.busy = False
        self.req = self.ts = self.resp = None
        if ts is not None:
            ts.in_flight -= 1
            if ts.in_flight <= 0 and ts.state == b.DRAINING:
                self.listener.runtime.request_done(ts)

    def _reply(self, status: int, *, keep_alive: bool) -> None:
        """An ALB answer outside any exchange (400, 503)."""
        if status != 503:
            self.listener.runtime.stats.record_elb_response(status)
        self.transport.write(error_response(status, keep_alive=keep_alive))
        if not keep_alive:
            self.transport.close()
            self.closed = True

    def on_tick(self, idle_limit_ticks: int) -> None:
        """The sweeper's beat: time out a silent target (504) or an idle client connection."""
        self.idle_ticks += 1
        if self.idle_ticks < idle_limit_ticks:
            return
        if self.busy:
            if self.resp is None:
                self._fail(504)
            else:
                up, self.up = self.up, None
                if up is not None:
                    up.client = None
                    up.close()
                self.keep_alive = False
                self._finish(False)
                self.transport.abort()
        elif not self.closed:
            self.transport.close()
            self.closed = True
