#!/usr/bin/env python3
"""Interop checklist against an ECHO server, using the Python `websockets` client.

Usage: py_client.py ws://127.0.0.1:PORT [--deflate | --deflate-no-context | --no-deflate]

Modes (permessage-deflate, RFC 7692):
  --deflate             offer it with websockets' defaults (compression="deflate",
                        context takeover kept); every connection must negotiate it.
  --deflate-no-context  offer it with client_no_context_takeover and
                        server_no_context_takeover; every connection must negotiate it,
                        and the response must carry server_no_context_takeover.
  --no-deflate          (default) offer nothing; no connection may negotiate an extension.
A connection that negotiated otherwise fails the check that opened it. In the deflate
modes a last check asserts compression was really used on the wire: every echo of
1 KiB or more arrived compressed (RSV1 set), and our messages went out compressed.

Prints one PASS/FAIL line per check (and `#` comment lines) and ends with
`interop: N passed, M failed` (parsed by scripts/interop and CI); exits 1 if any
check failed.
"""
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import (ClientPerMessageDeflateFactory,
                                                      PerMessageDeflate)
from websockets.frames import Opcode

MAX_SIZE = 32 * 1024 * 1024
CHECK_TIMEOUT = 30  # seconds per check, connect and close included
SIZES = [0, 125, 126, 65535, 65536, 16 * 1024 * 1024]
CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
               1013, 1014, 3000, 3999, 4000, 4999]
MODES = ("--deflate", "--deflate-no-context", "--no-deflate")
BIG = 1024  # in the deflate modes, echoes at least this long must arrive compressed

# Payloads are deterministic so a failure can be reproduced. Text mixes 1-, 2-,
# 3- and 4-byte UTF-8 sequences (10 bytes per unit), padded with ASCII so that
# its UTF-8 length is exactly n. Binary repeats a 251-byte block (prime length,
# so it never lines up with the 4-byte mask).
UNIT = "a\u00e9\u20ac\U0001F600"
BLOCK = bytes((i * 131 + 17) % 256 for i in range(251))


def text_of(n):
    s = UNIT * (n // 10) + "a" * (n % 10)
    assert len(s.encode()) == n
    return s


def binary_of(n):
    return (BLOCK * (n // len(BLOCK) + 1))[:n]


def describe_mismatch(got, want):
    if type(got) is not type(want):
        return f"got {type(got).__name__}, want {type(want).__name__}"
    if len(got) != len(want):
        return f"got {len(got)} items, want {len(want)}"
    i = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
    return f"content differs at index {i}"


def connect_options(mode):
    if mode == "--deflate":
        return {"compression": "deflate"}
    if mode == "--deflate-no-context":
        factory = ClientPerMessageDeflateFactory(client_no_context_takeover=True,
                                                 server_no_context_takeover=True)
        return {"compression": None, "extensions": [factory]}
    return {"compression": None}


class NegotiationMismatch(Exception):
    pass


class Checker:
    def __init__(self, url, mode):
        self.url = url
        self.mode = mode
        self.deflate = mode != "--no-deflate"
        self.ws = None  # shared connection for the message checks
        self.passed = self.failed = 0
        self.negotiated = set()  # Sec-WebSocket-Extensions values of the responses
        self.last_in_rsv1 = None  # RSV1 of the last data message received
        self.sent_compressed = 0  # data messages we sent with RSV1 set
        self.echoes = []  # (size in bytes, arrived compressed) per completed echo

    def negotiation_error(self, ws):
        """Why this connection's handshake does not match the mode, or None."""
        header = ws.response.headers.get("Sec-WebSocket-Extensions")
        self.negotiated.add(header)
        pmd = [e for e in ws.protocol.extensions if isinstance(e, PerMessageDeflate)]
        if not self.deflate:
            if header is not None or ws.protocol.extensions:
                return f"no extension offered, yet the response has {header!r}"
            return None
        if header is None or "permessage-deflate" not in header or len(pmd) != 1:
            return f"permessage-deflate not negotiated (response extensions: {header!r})"
        if self.mode == "--deflate-no-context":
            if "server_no_context_takeover" not in header:
                return f"response lacks server_no_context_takeover: {header!r}"
            if not (pmd[0].remote_no_context_takeover and pmd[0].local_no_context_takeover):
                return f"negotiated {pmd[0]!r}, want no context takeover both ways"
        return None

    def instrument(self, ws):
        """Watch the RSV1 bit of data frames in both directions (websockets applies
        the extension to every frame, so this sees the wire's compression flag)."""
        for ext in ws.protocol.extensions:
            if isinstance(ext, PerMessageDeflate):
                decode, encode = ext.decode, ext.encode

                def counting_decode(frame, *args, decode=decode, **kwargs):
                    if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                        self.last_in_rsv1 = frame.rsv1
                    return decode(frame, *args, **kwargs)

                def counting_encode(frame, *args, encode=encode, **kwargs):
                    out = encode(frame, *args, **kwargs)
                    if out.opcode in (Opcode.TEXT, Opcode.BINARY) and out.rsv1:
                        self.sent_compressed += 1
                    return out

                ext.decode, ext.encode = counting_decode, counting_encode

    async def open(self):
        ws = await connect(self.url, **connect_options(self.mode), max_size=MAX_SIZE,
                           ping_interval=None, open_timeout=10, close_timeout=10)
        err = self.negotiation_error(ws)
        if err:
            ws.transport.abort()
            raise NegotiationMismatch(err)
        self.instrument(ws)
        return ws

    async def conn(self):
        if self.ws is None:
            self.ws = await self.open()
        return self.ws

    async def check(self, name, fn):
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                err = await fn()
        except TimeoutError:
            err = f"timed out ({CHECK_TIMEOUT} s per check, 10 s to open)"
        except Exception as e:  # noqa: BLE001 - any error is a failed check
            err = f"{type(e).__name__}: {e}"
        if err:
            self.failed += 1
            print(f"FAIL {name}: {err}", flush=True)
            # The shared connection may now be out of step: start afresh.
            if self.ws is not None:
                self.ws.transport.abort()
                self.ws = None
        else:
            self.passed += 1
            print(f"PASS {name}", flush=True)

    async def echo(self, send, want):
        ws = await self.conn()
        await ws.send(send, text=isinstance(want, str))
        self.last_in_rsv1 = None
        got = await ws.recv()
        size = len(want.encode() if isinstance(want, str) else want)
        self.echoes.append((size, bool(self.last_in_rsv1)))
        return None if got == want else describe_mismatch(got, want)

    async def handshake(self):
        await self.conn()  # open() raises if the negotiation does not match the mode
        return None

    async def compression_used(self):
        big = [(n, c) for n, c in self.echoes if n >= BIG]
        plain = sorted({n for n, c in big if not c})
        if not big:
            return f"no echo of {BIG} B or more completed"
        if plain:
            return f"echoes of {plain} B arrived without RSV1 (uncompressed)"
        if self.sent_compressed == 0:
            return "no message went out compressed"
        print(f"# {len(big)} echoes of >= {BIG} B arrived compressed; "
              f"{self.sent_compressed} messages sent compressed", flush=True)
        return None

    async def ping(self):
        ws = await self.conn()
        payload = b"duplex-ping \x00\xff"
        pong = await ws.ping(payload)  # resolves only on a pong with this payload
        await pong
        return None

    async def close_with(self, code):
        reason = f"bye {code}"
        async with await self.open() as ws:
            await ws.close(code, reason)
            got = ws.protocol.close_rcvd
        if got is None:
            return "no close frame received"
        if got.code != code:
            return f"server closed with {got.code} {got.reason!r}, want {code}"
        return None

    async def run(self):
        want = {"--deflate": "permessage-deflate negotiated",
                "--deflate-no-context": "permessage-deflate negotiated, no context takeover",
                "--no-deflate": "no extension negotiated"}[self.mode]
        await self.check(f"handshake: {want}", self.handshake)
        for n in SIZES:
            t, b = text_of(n), binary_of(n)
            await self.check(f"text {n} B", lambda t=t: self.echo(t, t))
            await self.check(f"binary {n} B", lambda b=b: self.echo(b, b))
        # Fragmented text: the 2nd boundary splits the 4-byte emoji; websockets
        # also appends an empty final continuation frame.
        frag = text_of(3000).encode()
        parts = [frag[:1000], frag[1000:1009], frag[1009:]]
        await self.check("fragmented text (3+1 frames)",
                         lambda: self.echo(parts, frag.decode()))
        bparts = [binary_of(70000), b"", binary_of(10)]
        await self.check("fragmented binary (3+1 frames)",
                         lambda: self.echo(bparts, b"".join(bparts)))
        await self.check("ping with payload -> pong", self.ping)
        if self.ws is not None:
            await self.ws.close()
        for code in CLOSE_CODES:
            await self.check(f"close {code} echoed", lambda c=code: self.close_with(c))
        if self.deflate:
            await self.check(f"compression in use: echoes >= {BIG} B arrived compressed, "
                             "sent compressed", self.compression_used)
        seen = sorted("(none)" if h is None else repr(h) for h in self.negotiated)
        print(f"# negotiated: {' | '.join(seen)}", flush=True)
        print(f"interop: {self.passed} passed, {self.failed} failed", flush=True)
        return self.failed == 0


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[2:] and sys.argv[2] not in MODES:
        sys.exit(f"usage: py_client.py ws://HOST:PORT [{' | '.join(MODES)}]")
    mode = sys.argv[2] if len(sys.argv) == 3 else "--no-deflate"
    ok = asyncio.run(Checker(sys.argv[1], mode).run())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
