#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/: real handshakes, frames of each
opcode in both directions, compressed messages, proxy replies. The frames and deflate
data are made here with Python's zlib, apart from the crate's own encoder. Run it again
after changing a target's input layout; the output is deterministic."""
import os, shutil, struct, zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
MASK = bytes([0x37, 0xFA, 0x21, 0x3D])


def frame(masked, fin, rsv, opcode, payload):
    out = bytes([(fin << 7) | (rsv << 4) | opcode])
    bit = 0x80 if masked else 0
    n = len(payload)
    if n <= 125:
        out += bytes([bit | n])
    elif n <= 0xFFFF:
        out += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        out += bytes([bit | 127]) + struct.pack(">Q", n)
    if masked:
        out += MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    else:
        out += payload
    return out


def deflate(data, bits=15, level=6, final=False):
    c = zlib.compressobj(level, zlib.DEFLATED, -bits)
    out = c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


def chunks(*sizes):
    return bytes([len(sizes)] + list(sizes))


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def frame_seeds():
    text = "Hello, wörld — ✓".encode()
    for target, masked in (("frame_server", True), ("frame_client", False)):
        f = lambda fin, rsv, op, p: frame(masked, fin, rsv, op, p)
        plain = b"\x00\x00"  # deflate off, default limits
        # Deflate on, both windows 15, context takeover; limits: default.
        comp = bytes([0x01 | (7 << 3), 7])
        comp_reset = bytes([0x01 | 0b110 | (1 << 3), 1 | 0x40])  # windows 9, resets
        small = bytes([0x00, 3 << 3])  # 64-byte messages, 16-byte frames
        one = chunks()
        seeds = {
            "text": plain + one + f(1, 0, 1, text),
            "binary": plain + one + f(1, 0, 2, bytes(range(256))),
            "ping_pong": plain + one + f(1, 0, 9, b"ping") + f(1, 0, 10, b"pong"),
            "close_reason": plain + one + f(1, 0, 8, struct.pack(">H", 1000) + b"bye"),
            "close_empty": plain + one + f(1, 0, 8, b"") + f(1, 0, 1, b"after"),
            "fragmented": plain + chunks(1, 3, 7)
            + f(0, 0, 1, text[:3]) + f(1, 0, 9, b"mid") + f(0, 0, 0, text[3:9])
            + f(1, 0, 0, text[9:]),
            "medium": plain + chunks(200) + f(1, 0, 2, b"x" * 300),
            # A 64-bit length announced, none of it sent: refused from the header alone.
            "huge_announced": bytes([0x00, 6 << 3]) + one + f(1, 0, 2, b"")[:1]
            + bytes([(0x80 if masked else 0) | 127]) + struct.pack(">Q", 1 << 40),
            "bad_utf8": plain + one + f(1, 0, 1, b"ok\xff"),
            "reserved_opcode": plain + one + f(1, 0, 3, b""),
            "rsv_without_deflate": plain + one + f(1, 4, 1, b"x"),
            "wrong_mask": plain + one + frame(not masked, 1, 0, 1, b"x"),
            "small_limits": small + chunks(5) + f(0, 0, 2, b"a" * 16) + f(1, 0, 0, b"b" * 16)
            + f(1, 0, 2, b"c" * 17),
            "compressed": comp + one + f(1, 4, 1, deflate(b"compress me " * 20))
            + f(1, 4, 2, deflate(b"")) + f(1, 0, 1, b"plain too"),
            "compressed_fragments": comp + chunks(2, 9)
            + f(0, 4, 1, deflate(text * 10)[:5]) + f(1, 0, 0, deflate(text * 10)[5:]),
            "compressed_reset": comp_reset + one
            + f(1, 4, 2, deflate(bytes(1000), bits=9)) + f(1, 4, 2, deflate(bytes(1000), bits=9)),
            "compressed_final_block": comp + one + f(1, 4, 1, deflate(b"final", final=True)),
        }
        # Two messages with one context: the second refers back into the first.
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        m1 = c.compress(b"shared history " * 8) + c.flush(zlib.Z_SYNC_FLUSH)
        m2 = c.compress(b"shared history " * 8) + c.flush(zlib.Z_SYNC_FLUSH)
        seeds["compressed_context"] = comp + one + f(1, 4, 1, m1[:-4]) + f(1, 4, 1, m2[:-4])
        for name, data in seeds.items():
            write(target, name, data)


def inflate_seeds():
    def seed(flags, limit, frags, payload):
        return bytes([flags]) + struct.pack(">H", limit) + bytes([frags]) + payload
    seeds = {
        "small_text": seed(0x20 | (7 << 1), 100, 0, deflate(b"hello " * 10)),
        "bomb": seed(7 << 1, 1000, 0, deflate(bytes(200_000), level=9)),
        "at_limit": seed(7 << 1, 512, 1, deflate(bytes(range(256)) * 2)),
        "over_limit": seed(7 << 1, 511, 2, deflate(bytes(range(256)) * 2)),
        "window9": seed(1 << 1, 4096, 3, deflate(bytes(range(200)) * 15, bits=9)),
        "client_final_block": seed(0x01 | (7 << 1) | 0x10, 64, 0, deflate(b"end", final=True)),
        "two_streams": seed(7 << 1, 200, 0, deflate(b"one", final=True) + deflate(b"two")),
        "garbage": seed(7 << 1, 100, 0, b"\xff\xff\xff\xff"),
        "empty": seed(7 << 1, 0, 0, b"\x00"),
        "stored": seed(7 << 1, 300, 1, deflate(b"stored block", level=0)),
    }
    for name, data in seeds.items():
        write("inflate_limits", name, data)


RFC_REQUEST = (b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")


def handshake_seeds():
    browser = (b"GET /socket?room=1 HTTP/1.1\r\nHost: localhost:9001\r\nConnection: keep-alive, Upgrade\r\n"
               b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
               b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
    seeds = {
        "rfc_example": b"\x02" + chunks() + RFC_REQUEST,
        "browser_deflate": b"\x02" + chunks(10, 1, 30) + browser,
        "incoming_plain": b"\x0a" + chunks() + b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n",
        "incoming_upgrade": b"\x0a" + chunks(64) + RFC_REQUEST + b"\x81\x85",
        "absolute_target": b"\x02" + chunks() + RFC_REQUEST.replace(b"GET /chat", b"GET http://h/chat?x"),
        "offers": b"\x02" + chunks() + RFC_REQUEST.replace(
            b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10;"
            b" client_no_context_takeover, permessage-deflate\r\n\r\n"),
        "too_small": b"\x04" + chunks() + RFC_REQUEST,
        "version_8": b"\x02" + chunks() + RFC_REQUEST.replace(b"Version: 13", b"Version: 8"),
        "round_trip": b"\x83\x00\x00example.com\xff/chat?a=b\xffhttp://o\xffchat\xfesuperchat",
        "round_trip_deflate": b"\x87\x1d\x3e127.0.0.1:9001\xff/\xff\xffv2.json",
    }
    for name, data in seeds.items():
        write("handshake_server", name, data)

    ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: @A@\r\n"
    seeds = {
        "plain": b"\x00\x00\x02" + chunks() + ok + b"\r\n",
        "protocol": b"\x01\x00\x02" + chunks(7, 3) + ok + b"Sec-WebSocket-Protocol: chat\r\n\r\n",
        "deflate": b"\x08\x00\x02" + chunks() + ok + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        "deflate_windows": b"\x08\x1d\x02" + chunks() + ok
        + b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits=9;"
        b" server_no_context_takeover; client_no_context_takeover\r\n\r\n",
        "frame_after": b"\x00\x00\x02" + chunks(100) + ok + b"\r\n\x81\x02hi",
        "rejected": b"\x00\x00\x02" + chunks() + b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        "bad_accept": b"\x00\x00\x02" + chunks() + ok.replace(b"@A@", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") + b"\r\n",
    }
    for name, data in seeds.items():
        write("handshake_client", name, data)


def proxy_seeds():
    ok = b"HTTP/1.1 200 Connection established\r\n\r\n"
    seeds = {
        "ok": b"\x00" + chunks() + ok,
        "ok_auth_tunnel_bytes": b"\x01" + chunks(5) + ok + b"\x81\x00tunnel",
        "interim": b"\x00" + chunks(3, 40) + b"HTTP/1.1 100 Continue\r\n\r\n" + ok,
        "refused_407": b"\x00" + chunks() + b"HTTP/1.1 407 Proxy Authentication Required\r\n"
        b"Proxy-Authenticate: Basic realm=\"p\"\r\nContent-Length: 0\r\n\r\n",
        "http10": b"\x00" + chunks() + b"HTTP/1.0 200 OK\r\nVia: squid\r\n\r\n",
        "not_http": b"\x00" + chunks() + b"SSH-2.0-OpenSSH_9.2\r\n",
        "truncated": b"\x00" + chunks() + b"HTTP/1.1 200 OK\r\nX: y\r\n",
    }
    for name, data in seeds.items():
        write("proxy_connect_reply", name, data)

    v4 = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"
    seeds = {
        "no_auth": b"\x00" + chunks() + b"\x05\x00" + v4 + b"tunnel",
        "auth": b"\x01" + chunks(1, 2) + b"\x05\x02\x01\x00" + v4,
        "auth_refused": b"\x01" + chunks() + b"\x05\x02\x01\x01",
        "no_method": b"\x00" + chunks() + b"\x05\xff",
        "refused": b"\x04" + chunks() + b"\x05\x00\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00",
        "domain": b"\x04" + chunks() + b"\x05\x00\x05\x00\x00\x03\x04host\x1f\x90",
        "ipv6": b"\x02" + chunks() + b"\x05\x00\x05\x00\x00\x04" + bytes(16) + b"\x00\x50",
        "not_socks": b"\x00" + chunks() + b"HTTP/1.1 400 Bad Request\r\n\r\n",
    }
    for name, data in seeds.items():
        write("socks5_reply", name, data)


def hub_seeds():
    import base64, hashlib, hmac, json

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    # What the official SDKs send: connect with subscribes, then the other commands.
    commands = {
        "connect_subscribe": '{"connect":{"token":"t","name":"js","version":"5.0.0"},"id":1}\n'
        '{"subscribe":{"channel":"chat:index","recover":true,"offset":3,"epoch":"ab","join_leave":true},"id":2}',
        "connect_subs": '{"id":1,"connect":{"data":{"a":1},"subs":{"news":{"recover":true,"offset":7,"epoch":"e"}}}}',
        "publish": '{"id":3,"publish":{"channel":"chat:index","data":{"text":"hi \\u00e9"}}}',
        "history": '{"id":4,"history":{"channel":"chat:index","limit":10,"since":{"offset":2,"epoch":"ab"},"reverse":true}}',
        "presence": '{"id":5,"presence":{"channel":"c"}}\n{"id":6,"presence_stats":{"channel":"c"}}',
        "rpc_send": '{"id":7,"rpc":{"method":"sum","data":[1,2]}}\n{"send":{"data":{"x":1}}}',
        "refresh": '{"id":8,"refresh":{"token":"t2"}}\n{"id":9,"sub_refresh":{"channel":"c","token":"s"}}',
        "pong_unsubscribe": '{}\n{"id":10,"unsubscribe":{"channel":"c"}}\n{"id":11,"ping":{}}',
        "no_id": '{"publish":{"channel":"c","data":1}}',
    }
    for name, text in commands.items():
        write("hub_command", name, text.encode())

    # The same commands in the Protobuf format (client.proto's field numbers).
    def varint(n):
        out = b""
        while n >= 0x80:
            out += bytes([(n & 0x7F) | 0x80])
            n >>= 7
        return out + bytes([n])

    def num(tag, n):
        return varint(tag << 3) + varint(n)

    def fld(tag, data):
        return varint((tag << 3) | 2) + varint(len(data)) + data

    def cmd(*fields):
        body = b"".join(fields)
        return varint(len(body)) + body

    protobuf = {
        "connect_subscribe": cmd(num(1, 1), fld(4, fld(1, b"t") + fld(4, b"js") + fld(5, b"5.0.0")))
        + cmd(num(1, 2), fld(5, fld(1, b"chat:index") + num(3, 1) + fld(6, b"ab") + num(7, 3) + num(11, 1))),
        "connect_subs": cmd(num(1, 1), fld(4, fld(2, b'{"a":1}') + fld(3, fld(1, b"news") + fld(2, num(3, 1) + num(7, 7))))),
        "publish": cmd(num(1, 3), fld(7, fld(1, b"chat:index") + fld(2, b'{"text":"hi"}'))),
        "publish_binary": cmd(num(1, 3), fld(7, fld(1, b"c") + fld(2, b"\x00\xff"))),
        # Valid JSON that no f64 holds (found by this target): kept as written.
        "publish_huge_number": cmd(num(1, 3), fld(7, fld(1, b"c") + fld(2, b"880000e008800"))),
        "history": cmd(num(1, 4), fld(10, fld(1, b"chat:index") + num(7, 10) + fld(8, num(1, 2) + fld(2, b"ab")) + num(9, 1))),
        "history_all": cmd(num(1, 4), fld(10, fld(1, b"c") + num(7, 2**64 - 1))),
        "presence": cmd(num(1, 5), fld(8, fld(1, b"c"))) + cmd(num(1, 6), fld(9, fld(1, b"c"))),
        "rpc_send": cmd(num(1, 7), fld(13, fld(1, b"[1,2]") + fld(2, b"sum"))) + cmd(fld(12, fld(1, b'{"x":1}'))),
        "refresh": cmd(num(1, 8), fld(14, fld(1, b"t2"))) + cmd(num(1, 9), fld(15, fld(1, b"c") + fld(2, b"s"))),
        "pong_unsubscribe": cmd() + cmd(num(1, 10), fld(6, fld(1, b"c"))) + cmd(num(1, 11), fld(11, b"")),
        "no_id": cmd(fld(7, fld(1, b"c") + fld(2, b"1"))),
    }
    for name, data in protobuf.items():
        write("hub_command_protobuf", name, data)

    def jwt(header, claims, secret):
        message = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(claims).encode())
        sig = hmac.new(secret, message, hashlib.sha256).digest()
        return message + b"." + b64(sig)

    claims = {"sub": "42", "exp": 1700000100, "info": {"name": "Ada"}, "channels": ["news"]}
    other = b"another-secret-another-secret-another!"
    tokens = {
        "hs256_other_secret": jwt({"alg": "HS256", "typ": "JWT"}, claims, other),
        "alg_none": b64(b'{"alg":"none"}') + b"." + b64(json.dumps(claims).encode()) + b".",
        "rs256_bad_sig": b64(b'{"alg":"RS256","kid":"k"}') + b"." + b64(b'{"sub":"1"}') + b"." + b64(bytes(256)),
        "es256_bad_sig": b64(b'{"alg":"ES256"}') + b"." + b64(b'{"sub":"1"}') + b"." + b64(bytes(64)),
        "not_a_token": b"abc.def",
    }
    for name, token in tokens.items():
        write("hub_token", name, b"\x00" + token)
    payloads = {
        "claims": claims,
        "expired": {"sub": "1", "exp": 1600000000},
        "nbf_aud_iss": {"sub": "2", "nbf": 1700000000, "aud": ["a", "b"], "iss": "me"},
        "subscription": {"sub": "3", "channel": "secret"},
    }
    for name, payload in payloads.items():
        write("hub_token", "signed_" + name, b"\x01" + json.dumps(payload).encode())
    write("hub_token", "signed_leeway", b"\x15" + json.dumps(payloads["expired"]).encode())
    # The target's first findings (its own oracle was stricter than serde): kept.
    write("hub_token", "invalid_utf8_in_an_unknown_claim", b'\x01{"suel": "se\xf3cret"}')
    write("hub_token", "huge_number_in_an_unknown_claim", b'\x15{"ep":1E1000}')

    # The API: the first byte picks the method (the order of METHODS in src/hub.rs).
    bodies = [
        (0, {"channel": "chat:a", "data": {"text": "hi"}, "idempotency_key": "k1"}),
        (1, {"channels": ["a", "chat:b"], "data": [1, 2, 3]}),
        (2, {"channel": "chat:a", "limit": 5, "since": {"offset": 1, "epoch": "x"}, "reverse": True}),
        (3, {"channel": "chat:a"}),
        (4, {"channel": "chat:a"}),
        (5, {"channel": "chat:a"}),
        (6, {"pattern": "chat:*"}),
        (7, {}),
        (8, {"user": "u", "channel": "chat:a"}),
        (9, {"user": "u", "channel": "chat:a"}),
        (10, {"user": "u"}),
        (11, {"commands": [{"publish": {"channel": "a", "data": 1}}, {"history": {"channel": "a"}}], "parallel": True}),
        (12, {}),
    ]
    for pick, body in bodies:
        write("hub_api", "method_%d" % pick, bytes([pick]) + json.dumps(body).encode())


if __name__ == "__main__":
    shutil.rmtree(ROOT, ignore_errors=True)
    frame_seeds()
    inflate_seeds()
    handshake_seeds()
    proxy_seeds()
    hub_seeds()
