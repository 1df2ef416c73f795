#!/usr/bin/env python3
"""Echo server (Python `websockets`) for testing duplex's client.

Usage: py_server.py PORT [--deflate | --deflate-no-context | --no-deflate]
  (PORT 0 = ephemeral; binds 127.0.0.1 only)

Modes (permessage-deflate, RFC 7692):
  --deflate             websockets' default compression="deflate" (context takeover
                        kept unless the client asks otherwise).
  --deflate-no-context  accept it with server_no_context_takeover and
                        client_no_context_takeover.
  --no-deflate          (default) decline it.

Echoes every data message with its type; websockets answers pings itself. Prints
`listening on ws://127.0.0.1:PORT` once ready, then serves until SIGTERM/SIGINT.
It watches the RSV1 bit of every data message both ways and, when stopped, prints
a server-side verdict for scripts/interop as PASS/FAIL lines:
  deflate modes: every connection negotiated permessage-deflate (no-context mode:
    with both no_context_takeover parameters), some messages arrived compressed and
    none of 1 KiB or more arrived uncompressed, and every echo went out compressed;
  --no-deflate: no connection negotiated an extension, nothing was compressed.
"""
import asyncio
import collections
import logging
import signal
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (PerMessageDeflate,
                                                      ServerPerMessageDeflateFactory)
from websockets.frames import Opcode

MAX_SIZE = 32 * 1024 * 1024
MODES = ("--deflate", "--deflate-no-context", "--no-deflate")
BIG = 1024
DATA = (Opcode.TEXT, Opcode.BINARY)


class Stats:
    def __init__(self):
        self.connections = self.deflate_connections = 0
        self.headers = set()  # Sec-WebSocket-Extensions values sent
        self.msgs_in = self.compressed_in = self.big_plain_in = 0
        self.msgs_out = self.compressed_out = 0


STATS = Stats()
RSV1_IN = {}  # connection -> deque of the RSV1 bits of data messages not yet handled


def instrument(connection, request, response):
    """process_response hook: runs after the extensions are negotiated, before any
    frame; wraps the connection's PerMessageDeflate to see the RSV1 bits."""
    if response.status_code != 101:
        return None
    STATS.connections += 1
    header = response.headers.get("Sec-WebSocket-Extensions")
    STATS.headers.add(header)
    rsv1_in = RSV1_IN[connection] = collections.deque()
    for ext in connection.protocol.extensions:
        if isinstance(ext, PerMessageDeflate):
            STATS.deflate_connections += 1
            decode, encode = ext.decode, ext.encode

            def counting_decode(frame, *args, decode=decode, **kwargs):
                if frame.opcode in DATA:
                    rsv1_in.append(frame.rsv1)
                return decode(frame, *args, **kwargs)

            def counting_encode(frame, *args, encode=encode, **kwargs):
                out = encode(frame, *args, **kwargs)
                if out.opcode in DATA and out.rsv1:
                    STATS.compressed_out += 1
                return out

            ext.decode, ext.encode = counting_decode, counting_encode
    return None


async def echo(ws):
    rsv1_in = RSV1_IN.get(ws, collections.deque())
    try:
        async for msg in ws:  # str for text, bytes for binary: send() keeps the type
            compressed = rsv1_in.popleft() if rsv1_in else False
            STATS.msgs_in += 1
            STATS.compressed_in += compressed
            size = len(msg.encode() if isinstance(msg, str) else msg)
            STATS.big_plain_in += size >= BIG and not compressed
            STATS.msgs_out += 1
            await ws.send(msg)
    except ConnectionClosed:
        pass  # peers under test may close abnormally; nothing to echo then
    finally:
        RSV1_IN.pop(ws, None)


def verdict(mode):
    """Server-side checks over everything served, as (name, error or None)."""
    s = STATS
    shown = " | ".join(sorted("(none)" if h is None else repr(h) for h in s.headers))
    print(f"# py_server {mode}: {s.connections} connections, negotiated: {shown}; "
          f"messages in {s.msgs_in} ({s.compressed_in} compressed), "
          f"out {s.msgs_out} ({s.compressed_out} compressed)", flush=True)
    if s.connections == 0:
        return [("py_server: served connections", "no connection was served")]
    if mode == "--no-deflate":
        return [(f"py_server {mode} (server side): no extension negotiated, nothing compressed",
                 None if s.deflate_connections == 0 and s.headers == {None}
                 and s.compressed_in == s.compressed_out == 0 else "compression was used")]
    checks = []
    err = None
    if s.deflate_connections != s.connections:
        err = f"only {s.deflate_connections} of {s.connections} connections negotiated it"
    elif mode == "--deflate-no-context" and not all(
            "server_no_context_takeover" in h and "client_no_context_takeover" in h
            for h in s.headers):
        err = f"a response lacks a no_context_takeover parameter: {shown}"
    checks.append((f"py_server {mode} (server side): every connection negotiated "
                   "permessage-deflate", err))
    err = None
    if s.compressed_in == 0:
        err = "no message arrived compressed"
    elif s.big_plain_in:
        err = f"{s.big_plain_in} messages of >= {BIG} B arrived uncompressed"
    elif s.compressed_out != s.msgs_out:
        err = f"only {s.compressed_out} of {s.msgs_out} echoes went out compressed"
    checks.append((f"py_server {mode} (server side): messages >= {BIG} B arrived "
                   "compressed, echoes sent compressed", err))
    return checks


async def main(port, mode):
    if mode == "--deflate":
        options = {"compression": "deflate"}
    elif mode == "--deflate-no-context":
        factory = ServerPerMessageDeflateFactory(server_no_context_takeover=True,
                                                 client_no_context_takeover=True)
        options = {"compression": None, "extensions": [factory]}
    else:
        options = {"compression": None}
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with serve(echo, "127.0.0.1", port, **options, max_size=MAX_SIZE,
                     ping_interval=None, process_response=instrument) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await stop.wait()
        for name, err in verdict(mode):
            print(f"FAIL {name}: {err}" if err else f"PASS {name}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[2:] and sys.argv[2] not in MODES:
        sys.exit(f"usage: py_server.py PORT [{' | '.join(MODES)}]")
    logging.basicConfig(level=logging.WARNING, format="py_server: %(message)s")
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) == 3 else "--no-deflate"))
