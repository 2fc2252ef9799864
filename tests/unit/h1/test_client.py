"""The upstream pool (service/h1/client.py) against scripted servers on 127.0.0.1, under uvloop.

Each server reads one request head at a time and answers with the bytes a test gives it, split the
way the test says, so framing, keep-alive, failures and timeouts are all exercised over real sockets.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
import trustme
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.errors import UpstreamProtocolError, UpstreamTimeoutError, UpstreamUnavailableError
from service.h1.client import HIGH_WATER, Origin, Pool

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
REQUEST = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


class Scripted:
    """A server on 127.0.0.1:0 that runs ``script`` per connection; counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Scripted:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.script(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/chat/completions"

    def pool(self, **kw: Any) -> Pool:
        args: dict[str, Any] = {"max_connections": 4, "connect_s": 2.0, "read_s": 2.0, "pool_s": 2.0, **kw}
        return Pool("up", Origin(self.url), **args)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


def answer(*parts: bytes, keep_open: bool = True, requests: int = 1) -> Script:
    """Per request: write ``parts`` one by one (draining between them), ``requests`` times."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(requests):
            await read_request(reader)
            for part in parts:
                writer.write(part)
                await writer.drain()
        if keep_open:
            await reader.read()  # until the client closes
    return script


def fixed(body: bytes, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (
        status, extra, len(body), body)


def chunked(pieces: list[bytes]) -> bytes:
    out = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    out += b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p)
    return out + b"0\r\n\r\n"


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


# -- framing ---------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_a_content_length_body_arrives_whole_under_any_split(body: bytes, cuts: list[int]) -> None:
    async def main() -> None:
        async with Scripted(answer(*split(fixed(body, extra=b"Retry-After: 3\r\n"), cuts))) as srv:
            pool = srv.pool()
            resp = await pool.request(REQUEST)
            assert resp.status == 200
            assert resp.header(b"retry-after") == b"3"
            assert await resp.read_all() == body
            assert resp.eof
            resp.release()
            assert pool.idle == 1
            await pool.close()
    run(main())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.binary(min_size=1, max_size=300), max_size=12),
       cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_a_chunked_body_is_decoded_in_order_under_any_split(pieces: list[bytes], cuts: list[int]) -> None:
    async def main() -> None:
        async with Scripted(answer(*split(chunked(pieces), cuts))) as srv:
            pool = srv.pool()
            resp = await pool.request(REQUEST)
            got = []
            while chunk := await resp.read():
                got.append(chunk)
            assert b"".join(got) == b"".join(pieces)
            assert resp.header(b"content-type") == b"text/event-stream"
            resp.release()
            await pool.close()
    run(main())


def test_a_body_that_ends_with_the_connection_is_read_to_the_end() -> None:
    async def main() -> None:
        raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, part two"
        async with Scripted(answer(raw[:30], raw[30:], keep_open=False)) as srv:
            pool = srv.pool()
            resp = await pool.request(REQUEST)
            assert await resp.read_all() == b"part one, part two"
            resp.release()
            assert pool.size == 0  # not kept: the server said close
    run(main())


# -- keep-alive ------------------------------------------------------------------------------------

def test_sequential_requests_reuse_one_connection() -> None:
    async def main() -> None:
        async with Scripted(answer(fixed(b"{}"), requests=5)) as srv:
            pool = srv.pool()
            for _ in range(5):
                resp = await pool.request(REQUEST)
                assert await resp.read_all() == b"{}"
                resp.release()
            assert srv.connections == 1
            await pool.close()
    run(main())


def test_a_connection_the_server_closed_while_idle_is_retried_on_a_new_one() -> None:
    async def main() -> None:
        async with Scripted(answer(fixed(b"{}"), keep_open=False)) as srv:  # one answer, then close
            pool = srv.pool()
            for _ in range(3):
                resp = await pool.request(REQUEST)
                assert await resp.read_all() == b"{}"
                resp.release()
            assert srv.connections == 3
            await pool.close()
    run(main())


def test_a_response_not_read_to_the_end_closes_its_connection() -> None:
    async def main() -> None:
        async with Scripted(answer(fixed(b"x" * 100)[:-50], requests=1)) as srv:
            pool = srv.pool()
            resp = await pool.request(REQUEST)
            resp.release()
            assert pool.size == 0
    run(main())


# -- failures --------------------------------------------------------------------------------------

def test_a_refused_connection_is_unavailable() -> None:
    async def main() -> None:
        async with Scripted(answer()) as srv:
            url = srv.url
        pool = Pool("up", Origin(url), max_connections=1, connect_s=1, read_s=1, pool_s=1)
        with pytest.raises(UpstreamUnavailableError, match="cannot connect to upstream 'up'"):
            await pool.request(REQUEST)
        assert pool.size == 0
    run(main())


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nonly this\r\n",
], ids=["content-length", "chunked"])
def test_a_reset_mid_body_is_a_protocol_error(head: bytes) -> None:
    async def main() -> None:
        async with Scripted(answer(head, keep_open=False)) as srv:
            pool = srv.pool()
            resp = await pool.request(REQUEST)
            with pytest.raises(UpstreamProtocolError, match="before the response was complete"):
                await resp.read_all()
            resp.release()
            assert pool.size == 0
    run(main())


def test_garbage_is_a_protocol_error() -> None:
    async def main() -> None:
        async with Scripted(answer(b"SMTP ready\r\n\r\n")) as srv:
            pool = srv.pool()
            with pytest.raises(UpstreamProtocolError, match="could not read"):
                await pool.request(REQUEST)
            assert pool.size == 0
    run(main())


def test_an_upstream_that_stops_sending_times_out() -> None:
    async def main() -> None:
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        async with Scripted(answer(head)) as srv:  # then silence
            pool = srv.pool(read_s=0.2)
            resp = await pool.request(REQUEST)
            assert await resp.read() == b"hello"
            with pytest.raises(UpstreamTimeoutError, match="did not answer in time"):
                await resp.read()
            resp.release()
            assert pool.size == 0
    run(main())


def test_waiting_for_a_busy_pool_times_out_then_gets_a_released_connection() -> None:
    async def main() -> None:
        async with Scripted(answer(fixed(b"{}"), requests=3)) as srv:
            pool = srv.pool(max_connections=1, pool_s=0.2)
            first = await pool.request(REQUEST)
            with pytest.raises(UpstreamTimeoutError, match="stayed busy"):
                await pool.request(REQUEST)
            waiting = asyncio.ensure_future(pool.request(REQUEST))
            await asyncio.sleep(0)  # let it queue behind the busy connection
            assert await first.read_all() == b"{}"
            first.release()
            second = await asyncio.wait_for(waiting, 2)
            assert await second.read_all() == b"{}"
            second.release()
            assert srv.connections == 1
            await pool.close()
    run(main())


def test_a_cancelled_reader_closes_the_connection() -> None:
    async def main() -> None:
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        async with Scripted(answer(head)) as srv:
            pool = srv.pool()
            resp = await pool.request(REQUEST)

            async def reader() -> None:
                try:
                    await resp.read()
                finally:
                    resp.release()

            task = asyncio.ensure_future(reader())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert pool.size == 0
    run(main())


def test_a_body_bigger_than_the_high_water_mark_arrives_whole_when_read_slowly() -> None:
    body = bytes(range(256)) * (4 * HIGH_WATER // 256)

    async def main() -> None:
        async with Scripted(answer(fixed(body))) as srv:
            pool = srv.pool()
            resp = await pool.request(REQUEST)
            got = bytearray()
            while chunk := await resp.read():
                got += chunk
                await asyncio.sleep(0.001)
            assert bytes(got) == body
            resp.release()
            assert pool.idle == 1
            await pool.close()
    run(main())


def test_origin_parses_what_upstream_configs_hold() -> None:
    o = Origin("https://my-resource.openai.azure.com/openai/deployments/ft/chat/completions?api-version=2024-06-01")
    assert (o.scheme, o.host, o.port, o.host_header) == ("https", "my-resource.openai.azure.com", 443,
                                                         "my-resource.openai.azure.com")
    assert o.target == "/openai/deployments/ft/chat/completions?api-version=2024-06-01"
    assert Origin("http://127.0.0.1:8001/v1/chat/completions").host_header == "127.0.0.1:8001"
    with pytest.raises(ValueError, match="not an http"):
        Origin("ftp://x/y")


def test_https_upstreams_are_reached_over_tls_with_the_name_checked() -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(fixed(b'{"tls": true}'))
            await writer.drain()
            await reader.read()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        try:
            good = Pool("up", Origin(f"https://localhost:{port}/v1/chat/completions"), max_connections=1,
                        connect_s=2, read_s=2, pool_s=2, ssl_context=client_ctx)
            resp = await good.request(REQUEST)
            assert await resp.read_all() == b'{"tls": true}'
            resp.release()
            await good.close()
            untrusted = Pool("up", Origin(f"https://localhost:{port}/v1/chat/completions"), max_connections=1,
                             connect_s=2, read_s=2, pool_s=2)  # the system's CAs do not know ours
            with pytest.raises(UpstreamUnavailableError, match="SSLCertVerificationError"):
                await untrusted.request(REQUEST)
        finally:
            server.close()
    run(main())
