"""Interop of the hub's server HTTP API with cent, the official Centrifugo Python client
(its synchronous Client), as a real peer: publish, broadcast, history, presence,
presence_stats, info, and a wrong API key.

Run by scripts/hub-interop, which starts a hub and passes (all required):
  HUB_URL           http://127.0.0.1:PORT of the running hub (namespace `news`)
  HUB_API_KEY       its --api-key
  HUB_TOKEN_SECRET  its --token-secret (presence needs a subscriber: one connects over
                    WebSocket with the `websockets` package and a token signed here)
Usage: .venv/bin/python tests/hub/cent_test.py
Ends with `cent: N passed, M failed`; exits 1 if any test failed.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import unittest
import uuid

from cent import (
    BroadcastRequest,
    Client,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    StreamPosition,
)
from cent.exceptions import CentApiResponseError, CentUnauthorizedError
from websockets.sync.client import connect as ws_connect


def need(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set; run this file through scripts/hub-interop")
    return value


HUB_URL = need("HUB_URL").rstrip("/")
API_KEY = need("HUB_API_KEY")
SECRET = need("HUB_TOKEN_SECRET")
TIMEOUT = 10.0  # seconds, a failure guard for every request and WebSocket read


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def client(api_key=API_KEY):
    return Client(f"{HUB_URL}/api", api_key, timeout=TIMEOUT)


def token(claims):
    """An HS256 JWT signed with the hub's secret."""

    def part(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    unsigned = part(b'{"alg":"HS256","typ":"JWT"}') + "." + part(json.dumps(claims).encode())
    signature = hmac.new(SECRET.encode(), unsigned.encode(), hashlib.sha256).digest()
    return unsigned + "." + part(signature)


class Subscriber:
    """A WebSocket client subscribed to one channel (Centrifugo JSON protocol), so that
    presence has someone in it. Context manager; the connection closes on exit."""

    def __init__(self, channel, user, info=None):
        self.channel, self.user, self.info = channel, user, info

    def call(self, command_id, **command):
        self.ws.send(json.dumps({"id": command_id, **command}))
        while True:
            reply = json.loads(self.ws.recv(timeout=TIMEOUT).split("\n")[0])
            if reply.get("id") == command_id:
                if "error" in reply:
                    raise AssertionError(f"{list(command)[0]} failed: {reply['error']}")
                return reply

    def __enter__(self):
        self.connection = ws_connect(f"{HUB_URL.replace('http', 'ws', 1)}/connection/websocket",
                                     open_timeout=TIMEOUT)
        self.ws = self.connection.__enter__()
        claims = {"sub": self.user}
        if self.info is not None:
            claims["info"] = self.info
        self.client_id = self.call(1, connect={"token": token(claims), "name": "cent_test"})[
            "connect"]["client"]
        self.call(2, subscribe={"channel": self.channel})
        return self

    def __exit__(self, *exc):
        self.connection.__exit__(*exc)


class CentTest(unittest.TestCase):
    def setUp(self):
        self.api = client()

    def test_publish_returns_offset_and_epoch(self):
        channel = unique("news:pub")
        first = self.api.publish(PublishRequest(channel=channel, data={"text": "one"}))
        self.assertEqual(first.offset, 1, "the first publication of a channel is offset 1")
        self.assertRegex(first.epoch, r"\S", "the result carries the stream epoch")
        second = self.api.publish(PublishRequest(channel=channel, data=["two", 2]))
        self.assertEqual((second.offset, second.epoch), (2, first.epoch))
        # Acknowledged means stored: history has both, with the data as sent.
        history = self.api.history(HistoryRequest(channel=channel, limit=-1))
        self.assertEqual([(p.offset, p.data) for p in history.publications],
                         [(1, {"text": "one"}), (2, ["two", 2])])

    def test_publish_to_an_unknown_namespace_is_error_102(self):
        with self.assertRaises(CentApiResponseError) as raised:
            self.api.publish(PublishRequest(channel=unique("nowhere") + ":x", data={}))
        self.assertEqual(raised.exception.code, 102, str(raised.exception))

    def test_broadcast(self):
        channels = [unique("news:a"), unique("news:b"), unique("nowhere") + ":c"]
        result = self.api.broadcast(BroadcastRequest(channels=channels, data={"n": 1}))
        self.assertEqual(len(result.responses), 3, "one response per channel, in order")
        for response in result.responses[:2]:
            self.assertIsNone(response.error)
            self.assertEqual(response.result.offset, 1)
            self.assertRegex(response.result.epoch, r"\S")
        self.assertIsNotNone(result.responses[2].error, "an unknown namespace fails on its own")
        self.assertEqual(result.responses[2].error.code, 102)
        for channel in channels[:2]:
            history = self.api.history(HistoryRequest(channel=channel, limit=-1))
            self.assertEqual([p.data for p in history.publications], [{"n": 1}])

    def test_history_limit_since_reverse(self):
        channel = unique("news:hist")
        epoch = None
        for seq in range(1, 11):
            epoch = self.api.publish(PublishRequest(channel=channel, data={"seq": seq})).epoch

        def offsets(**kwargs):
            result = self.api.history(HistoryRequest(channel=channel, **kwargs))
            self.assertEqual((result.offset, result.epoch), (10, epoch), f"position for {kwargs}")
            return [p.offset for p in result.publications]

        self.assertEqual(offsets(), [], "no limit: only the stream position")
        self.assertEqual(offsets(limit=-1), list(range(1, 11)))
        self.assertEqual(offsets(limit=3), [1, 2, 3])
        self.assertEqual(offsets(limit=3, since=StreamPosition(offset=4, epoch=epoch)), [5, 6, 7])
        self.assertEqual(offsets(limit=3, reverse=True), [10, 9, 8])
        self.assertEqual(
            offsets(limit=3, since=StreamPosition(offset=8, epoch=epoch), reverse=True), [7, 6, 5])
        history = self.api.history(HistoryRequest(channel=channel, limit=1))
        self.assertEqual(history.publications[0].data, {"seq": 1})
        self.assertIsNone(history.publications[0].info, "an API publication has no client info")
        with self.assertRaises(CentApiResponseError) as raised:
            self.api.history(HistoryRequest(
                channel=channel, limit=3, since=StreamPosition(offset=4, epoch="other-epoch")))
        self.assertEqual(raised.exception.code, 112, "another epoch: unrecoverable position")

    def test_presence_and_presence_stats(self):
        channel = unique("news:lobby")
        empty = self.api.presence(PresenceRequest(channel=channel))
        self.assertEqual(empty.presence, {})
        stats = self.api.presence_stats(PresenceStatsRequest(channel=channel))
        self.assertEqual((stats.num_clients, stats.num_users), (0, 0))
        with Subscriber(channel, "alice", {"name": "Alice"}) as a1, \
                Subscriber(channel, "alice") as a2, Subscriber(channel, "bob") as b:
            present = self.api.presence(PresenceRequest(channel=channel)).presence
            self.assertEqual(sorted(present), sorted([a1.client_id, a2.client_id, b.client_id]),
                             "presence is keyed by client id")
            self.assertEqual(present[a1.client_id].user, "alice")
            self.assertEqual(present[a1.client_id].client, a1.client_id)
            self.assertEqual(present[a1.client_id].conn_info, {"name": "Alice"})
            self.assertEqual(present[b.client_id].user, "bob")
            stats = self.api.presence_stats(PresenceStatsRequest(channel=channel))
            self.assertEqual((stats.num_clients, stats.num_users), (3, 2))
        with self.assertRaises(CentApiResponseError) as raised:
            self.api.presence(PresenceRequest(channel=unique("nowhere") + ":x"))
        self.assertEqual(raised.exception.code, 102)

    def test_info(self):
        with Subscriber(unique("news:info"), "carol"):
            info = self.api.info(InfoRequest())
            self.assertEqual(len(info.nodes), 1, "one node")
            node = info.nodes[0]
            self.assertRegex(node.uid, r"\S", "the node has a uid")
            self.assertRegex(node.name, r"\S")
            self.assertRegex(node.version, r"\S")
            self.assertGreaterEqual(node.num_clients, 1, "the connected subscriber is counted")
            self.assertGreaterEqual(node.num_subs, 1)

    def test_a_wrong_api_key_is_refused(self):
        with self.assertRaises(CentUnauthorizedError):
            client("not-the-key").publish(PublishRequest(channel=unique("news:x"), data={}))
        with self.assertRaises(CentUnauthorizedError):
            client("not-the-key").info(InfoRequest())


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    # Nothing here is ever skipped: a skip is counted as a failure.
    print(f"cent: {passed} passed, {failed + skipped} failed", flush=True)
    sys.exit(1 if failed + skipped or result.testsRun == 0 else 0)
