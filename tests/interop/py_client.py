#!/usr/bin/env python3
"""Interop checklist against an ECHO server, using the Python `websockets` client.

Usage: py_client.py ws://127.0.0.1:PORT

Prints one PASS/FAIL line per check and ends with `interop: N passed, M failed`
(parsed by scripts/interop and CI); exits 1 if any check failed.
"""
import asyncio
import sys

from websockets.asyncio.client import connect

MAX_SIZE = 32 * 1024 * 1024
CHECK_TIMEOUT = 30  # seconds per check, connect and close included
SIZES = [0, 125, 126, 65535, 65536, 16 * 1024 * 1024]
CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
               1013, 1014, 3000, 3999, 4000, 4999]

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


class Checker:
    def __init__(self, url):
        self.url = url
        self.ws = None  # shared connection for the message checks
        self.passed = self.failed = 0

    async def conn(self):
        if self.ws is None:
            self.ws = await connect(self.url, compression=None, max_size=MAX_SIZE,
                                    ping_interval=None, open_timeout=10, close_timeout=10)
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
        got = await ws.recv()
        return None if got == want else describe_mismatch(got, want)

    async def ping(self):
        ws = await self.conn()
        payload = b"duplex-ping \x00\xff"
        pong = await ws.ping(payload)  # resolves only on a pong with this payload
        await pong
        return None

    async def close_with(self, code):
        reason = f"bye {code}"
        async with connect(self.url, compression=None, max_size=MAX_SIZE,
                           ping_interval=None, open_timeout=10, close_timeout=10) as ws:
            await ws.close(code, reason)
            got = ws.protocol.close_rcvd
        if got is None:
            return "no close frame received"
        if got.code != code:
            return f"server closed with {got.code} {got.reason!r}, want {code}"
        return None

    async def run(self):
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
        print(f"interop: {self.passed} passed, {self.failed} failed", flush=True)
        return self.failed == 0


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: py_client.py ws://HOST:PORT")
    ok = asyncio.run(Checker(sys.argv[1]).run())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
