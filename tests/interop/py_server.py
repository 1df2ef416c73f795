#!/usr/bin/env python3
"""Echo server (Python `websockets`) for testing duplex's client.

Usage: py_server.py PORT   (0 = ephemeral; binds 127.0.0.1 only)

Echoes every data message with its type; websockets answers pings itself.
permessage-deflate is off (compression is tested later). Prints
`listening on ws://127.0.0.1:PORT` once ready, then serves until killed.
"""
import asyncio
import logging
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

MAX_SIZE = 32 * 1024 * 1024


async def echo(ws):
    try:
        async for msg in ws:  # str for text, bytes for binary: send() keeps the type
            await ws.send(msg)
    except ConnectionClosed:
        pass  # peers under test may close abnormally; nothing to echo then


async def main(port):
    async with serve(echo, "127.0.0.1", port, compression=None, max_size=MAX_SIZE,
                     ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: py_server.py PORT")
    logging.basicConfig(level=logging.WARNING, format="py_server: %(message)s")
    try:
        asyncio.run(main(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass
