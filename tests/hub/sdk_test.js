// Interop of `duplex serve` with the official Centrifugo JavaScript SDK (centrifuge-js,
// the exact version in package-lock.json), driven as a real peer over real sockets: no
// mocks, no protocol written by hand. Run by scripts/hub-interop, which starts the hub
// and passes (all required):
//   HUB_URL           http://127.0.0.1:PORT of a running hub (its config: HUB_CONFIG)
//   HUB_CONFIG        that hub's TOML config (namespaces chat, pub, rec, jl, tiny)
//   HUB_BIN           the duplex binary: the SIGKILL test starts, kills and restarts
//                     a hub of its own (same config, its own data dir)
//   HUB_TOKEN_SECRET  --token-secret of both (connection tokens are signed here)
//   HUB_API_KEY       --api-key of both (the backend publishes over the HTTP API)
//   HUB_PID_FILE      where the PIDs of the hubs started here are appended, so that
//                     the script stops them even if this process dies first
// HUB_SDK_FORMAT=protobuf runs the same tests on the SDK's Protobuf build
// (centrifuge/build/protobuf, subprotocol centrifuge-protobuf), where payloads are bytes:
// the tests send JSON encoded to UTF-8 and decode what they receive.
// Nothing waits on a clock: every step awaits an SDK event, a promise or a process
// line; the timeouts below only turn a hang into a failure with a message.
'use strict';
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const WebSocket = require('ws');
const PROTOBUF = process.env.HUB_SDK_FORMAT === 'protobuf';
const { Centrifuge } = PROTOBUF ? require('centrifuge/build/protobuf') : require('centrifuge');
const support = require('./support');

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run this file through scripts/hub-interop`);
  return value;
}
const HUB_URL = need('HUB_URL').replace(/\/$/, '');
const HUB_CONFIG = need('HUB_CONFIG');
const HUB_BIN = need('HUB_BIN');
const SECRET = need('HUB_TOKEN_SECRET');
const API_KEY = need('HUB_API_KEY');
const PID_FILE = need('HUB_PID_FILE');
const HUB_PORT = Number(new URL(HUB_URL).port);

const STEP_MS = 10000; // failure guard for one awaited event
const TEST_MS = 120000; // failure guard for one test

// centrifuge-js 5.7.4 dispatches publications out of order when `ws` emits several
// frames parsed from one TCP read in the same tick (browsers deliver one message per
// task). allowSynchronousEvents: false makes ws behave like a browser.
class BrowserLikeWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { allowSynchronousEvents: false });
  }
}

// ---- helpers ---------------------------------------------------------------------

/** A payload for the SDK: the value itself (JSON build) or its JSON as bytes (Protobuf). */
const payload = (value) => (PROTOBUF ? new TextEncoder().encode(JSON.stringify(value)) : value);

/**
 * `v` with the Protobuf build's 64-bit integers (protobufjs `Long` objects: offsets) as
 * numbers, so that one set of assertions serves both builds.
 */
function plain(v) {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
  if (typeof v.toNumber === 'function' && 'low' in v && 'high' in v) return v.toNumber();
  if (Array.isArray(v)) return v.map(plain);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
}

/** A payload from the SDK as a value: bytes (Protobuf build) are JSON, decoded here. */
function value(data) {
  if (!PROTOBUF || data === undefined || data === null) return data;
  assert.ok(data instanceof Uint8Array, `a Protobuf payload is bytes, got ${typeof data}`);
  return data.length ? JSON.parse(new TextDecoder().decode(data)) : undefined;
}

const unique = (prefix) => `${prefix}-${crypto.randomBytes(5).toString('hex')}`;

/** An HS256 JWT (what a backend gives its users), signed with node:crypto. */
function token(claims, secret = SECRET) {
  const part = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  const signature = crypto.createHmac('sha256', secret).update(unsigned).digest('base64url');
  return `${unsigned}.${signature}`;
}

const { guard } = support;

/** Resolves with the first `event` whose argument passes `filter`. */
function next(emitter, event, what, { filter = () => true, ms = STEP_MS } = {}) {
  let handler;
  const waiting = new Promise((resolve) => {
    handler = (ctx) => {
      if (filter(ctx)) resolve(ctx);
    };
    emitter.on(event, handler);
  });
  return guard(waiting, ms, what).finally(() => emitter.off(event, handler));
}

const until = (emitter, event, condition, what, ms = STEP_MS) =>
  support.until(emitter, event, condition, what, ms);

/** POST /api/METHOD on a hub; returns `result`, throws with the hub's error code. */
async function api(method, body, base = HUB_URL) {
  const response = await fetch(`${base}/api/${method}`, {
    method: 'POST',
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(STEP_MS),
  });
  const text = await response.text();
  let reply;
  try {
    reply = JSON.parse(text);
  } catch {
    throw new Error(`/api/${method}: HTTP ${response.status}, not JSON: ${text.slice(0, 200)}`);
  }
  if (reply.error) {
    const error = new Error(`/api/${method}: error ${reply.error.code} ${reply.error.message}`);
    error.code = reply.error.code;
    error.fromHub = true;
    throw error;
  }
  assert.equal(response.status, 200, `/api/${method}: HTTP ${response.status} with a result`);
  return reply.result;
}

const wsUrl = (port) => `ws://127.0.0.1:${port}/connection/websocket`;

const clients = [];
/** A Centrifuge client for `user` (token claims from `claims`), connecting to `url`. */
function newClient(url, user, { claims = {}, options = {} } = {}) {
  const client = new Centrifuge(url, {
    token: token({ sub: user, ...claims }),
    websocket: BrowserLikeWebSocket,
    name: 'hub-interop',
    minReconnectDelay: 50,
    maxReconnectDelay: 500,
    timeout: STEP_MS,
    ...options,
  });
  client.errors = [];
  client.on('error', (ctx) => client.errors.push(ctx));
  clients.push(client);
  return client;
}

async function connected(client, what = 'the client to connect') {
  const ctx = next(client, 'connected', what);
  client.connect();
  return ctx;
}

/** Subscribes and resolves with the first 'subscribed' context. */
async function subscribed(sub) {
  const ctx = next(sub, 'subscribed', `'subscribed' on ${sub.channel}`);
  sub.subscribe();
  return plain(await ctx);
}

/**
 * Records a subscription's publications ({seq, offset, recovered, ctx}) and its
 * 'subscribed' contexts. The SDK hands the publications of a subscribe reply to
 * 'publication' synchronously right after 'subscribed', so those are the ones marked
 * `recovered` (with the number of the 'subscribed' they came with).
 */
class Recorder extends EventEmitter {
  constructor(sub) {
    super();
    this.sub = sub;
    this.pubs = [];
    this.subscribedCtx = [];
    this.errors = [];
    this.recovering = 0;
    sub.on('publication', (ctx) => {
      const data = value(ctx.data);
      this.pubs.push({ seq: data && data.seq, offset: plain(ctx.offset), recovered: this.recovering, ctx });
      this.emit('change');
    });
    sub.on('subscribed', (ctx) => {
      this.subscribedCtx.push(plain(ctx));
      this.recovering = this.subscribedCtx.length;
      process.nextTick(() => { this.recovering = 0; });
      this.emit('change');
    });
    sub.on('error', (ctx) => this.errors.push(ctx));
  }

  /** Resolves once `n` publications arrived. */
  count(n, ms = STEP_MS) {
    return until(this, 'change', () => this.pubs.length >= n,
      `${n} publications on ${this.sub.channel} (have ${this.pubs.length})`, ms);
  }

  /** Resolves once the publication with `offset` (or a later one) arrived. */
  reach(offset, ms = STEP_MS) {
    return until(this, 'change', () => this.pubs.some((p) => p.offset >= offset),
      `offset ${offset} on ${this.sub.channel} (last: ${this.lastOffset()})`, ms);
  }

  /** Resolves with the `n`th 'subscribed' context (1-based). */
  async subscribedNo(n, ms = STEP_MS) {
    await until(this, 'change', () => this.subscribedCtx.length >= n,
      `'subscribed' #${n} on ${this.sub.channel}`, ms);
    return this.subscribedCtx[n - 1];
  }

  lastOffset() {
    return this.pubs.length ? this.pubs[this.pubs.length - 1].offset : 0;
  }

  /** The publications that came in the reply of the `n`th subscribe. */
  recoveredWith(n) {
    return this.pubs.filter((p) => p.recovered === n);
  }
}

/** Asserts the offsets are consecutive from `from` (no gap, no duplicate, in order). */
function assertConsecutive(pubs, from, label) {
  const offsets = pubs.map((p) => p.offset);
  for (let i = 0; i < offsets.length; i++) {
    if (offsets[i] !== from + i) {
      const around = offsets.slice(Math.max(0, i - 3), i + 4).join(', ');
      assert.fail(`${label}: publication #${i + 1} has offset ${offsets[i]}, expected ${from + i} ` +
        `(a ${offsets[i] > from + i ? 'gap' : 'duplicate or reorder'}; offsets around it: ${around})`);
    }
  }
}

const relays = [];
async function newRelay(port) {
  const relay = await new support.Relay(port).listen();
  relays.push(relay);
  return relay;
}

/**
 * Publishes {seq} to `channel` over the HTTP API until stopped: the backend of the
 * recovery tests. `lanes` requests are in flight at once (so the hub commits and
 * delivers in batches, several publications per WebSocket write). Each attempt has its
 * own seq, so a publication stored but not acknowledged (the hub killed mid-request) is
 * never confused with a later one. A failed attempt waits for `waitForHub()`.
 */
class Publisher extends EventEmitter {
  constructor(channel, { base = () => HUB_URL, waitForHub = async () => {}, lanes = 4 } = {}) {
    super();
    this.channel = channel;
    this.base = base;
    this.waitForHub = waitForHub;
    this.lanes = lanes;
    this.acked = []; // {seq, offset, epoch}, in the order the acks came
    this.failed = []; // {seq, error}
    this.seq = 0;
    this.stopped = false;
  }

  async lane() {
    let failuresInARow = 0;
    while (!this.stopped) {
      const seq = ++this.seq;
      try {
        const result = await api('publish', { channel: this.channel, data: { seq } }, this.base());
        this.acked.push({ seq, offset: result.offset, epoch: result.epoch });
        failuresInARow = 0;
        this.emit('change');
      } catch (error) {
        if (error.fromHub) throw error; // the hub answered, with an error
        this.failed.push({ seq, error: String(error.cause || error) });
        if (++failuresInARow > 100) throw new Error(`100 publishes in a row failed: ${error.cause || error}`);
        this.emit('change');
        await this.waitForHub();
      }
    }
  }

  start() {
    this.done = Promise.all(Array.from({ length: this.lanes }, () => this.lane()));
    this.done.catch(() => {});
    return this;
  }

  /** Resolves once `n` more publications than now are acknowledged. */
  more(n, what, ms = STEP_MS) {
    const target = this.acked.length + n;
    return until(this, 'change', () => this.acked.length >= target,
      `${n} more acknowledged publications (${what})`, ms);
  }

  async stop() {
    this.stopped = true;
    await guard(this.done, STEP_MS, 'the publisher to stop');
  }

  /** The acknowledged publications in offset order. */
  byOffset() {
    return [...this.acked].sort((a, b) => a.offset - b.offset);
  }

  lastOffset() {
    return Math.max(...this.acked.map((a) => a.offset));
  }
}

/** Starts `duplex serve` with HUB_CONFIG, its own data dir and `port`; resolves when it listens. */
const hubs = new Set();
function startHub({ dataDir, port }) {
  return support.startHub({
    bin: HUB_BIN,
    args: ['--config', HUB_CONFIG, '--host', '127.0.0.1', '--port', String(port),
      '--data-dir', dataDir, '--engine', 'sqlite', '--token-secret', SECRET, '--api-key', API_KEY],
    pidFile: PID_FILE,
    logFile: path.join(dataDir, 'hub.log'),
    hubs,
    ms: 15000,
  });
}

process.on('exit', () => {
  for (const child of hubs) child.kill('SIGKILL');
});

after(() => {
  for (const client of clients) client.disconnect();
  for (const relay of relays) relay.close();
  for (const child of hubs) child.kill('SIGTERM');
});

// ---- tests -----------------------------------------------------------------------

test('connect with a token: the connected context names the client and transport', async () => {
  const client = newClient(wsUrl(HUB_PORT), 'alice', { claims: { info: { name: 'Alice' } } });
  const ctx = await connected(client);
  assert.equal(ctx.transport, 'websocket');
  assert.match(ctx.client, /\S/, 'the hub gave the connection a client id');
  assert.equal(client.state, 'connected');
  client.disconnect();
});

test('connect with a token signed by another secret: disconnected with 3500, no reconnect', async () => {
  const client = newClient(wsUrl(HUB_PORT), 'mallory',
    { options: { token: token({ sub: 'mallory' }, 'x'.repeat(40)) } });
  const ctx = next(client, 'disconnected', "'disconnected' after an invalid token");
  client.connect();
  const { code, reason } = await ctx;
  assert.equal(code, 3500, `disconnect code (reason: ${reason})`);
  assert.equal(client.state, 'disconnected');
});

test('connect with an expired token: the SDK gets a new one from getToken and connects', async () => {
  const now = Math.floor(Date.now() / 1000);
  let calls = 0;
  const client = newClient(wsUrl(HUB_PORT), 'alice', {
    claims: { exp: now - 60 },
    options: {
      getToken: async () => {
        calls += 1;
        return token({ sub: 'alice', exp: now + 3600 });
      },
    },
  });
  const ctx = await connected(client, 'the client to connect with the token from getToken');
  assert.match(ctx.client, /\S/);
  assert.equal(calls, 1, 'getToken was called once, after the hub answered 109 (token expired)');
  client.disconnect();
});

// A subscription made before connect() is sent in the same WebSocket message as the
// connect command (as on every reconnect of a client with subscriptions). When the
// connect fails with 109, Centrifugo answers the error and handles nothing more from
// that message; the SDK then closes the transport, asks getToken and reconnects.
test('connect with an expired token and a pending subscription: getToken, reconnect, subscribed', async () => {
  const now = Math.floor(Date.now() / 1000);
  let calls = 0;
  const client = newClient(wsUrl(HUB_PORT), 'alice', {
    claims: { exp: now - 60 },
    options: {
      getToken: async () => {
        calls += 1;
        return token({ sub: 'alice', exp: now + 3600 });
      },
    },
  });
  const sub = client.newSubscription(unique('early'));
  sub.subscribe(); // subscribing: its subscribe goes out with the connect command
  const subscribedOrDisconnected = [
    next(sub, 'subscribed', "'subscribed' after the reconnect with a fresh token").then(() => 'subscribed'),
    next(client, 'disconnected', 'a disconnect').then((ctx) => `disconnected ${ctx.code} ${ctx.reason}`),
  ];
  for (const p of subscribedOrDisconnected) p.catch(() => {});
  client.connect();
  assert.equal(await Promise.race(subscribedOrDisconnected), 'subscribed',
    'after 109 the SDK reconnects with a token from getToken and subscribes (it was disconnected instead)');
  assert.equal(calls, 1, 'getToken was called once, after the hub answered 109 (token expired)');
  client.disconnect();
});

// centrifuge-js asks getToken for a new token when the connect reply's ttl runs out, i.e.
// at the token's exp, and only then sends `refresh`; Centrifugo keeps an expired
// connection open for client_expired_close_delay (25 s by default) so that the refresh
// can arrive. The token endpoint here answers in 500 ms (a backend round trip).
test('a connection token that expires is refreshed in place: no disconnect, the subscription goes on', { timeout: TEST_MS }, async () => {
  const EXPIRES_IN = 2; // seconds
  const TOKEN_ENDPOINT_MS = 500;
  const now = Math.floor(Date.now() / 1000);
  let refreshed;
  const gotToken = new Promise((resolve) => { refreshed = resolve; });
  const client = newClient(wsUrl(HUB_PORT), 'alice', {
    claims: { exp: now + EXPIRES_IN },
    options: {
      getToken: async () => {
        await new Promise((resolve) => setTimeout(resolve, TOKEN_ENDPOINT_MS)); // the backend's latency
        refreshed();
        return token({ sub: 'alice', exp: now + 3600 });
      },
    },
  });
  await connected(client);
  const states = []; // from here on, any state change is a dropped connection
  client.on('connecting', (ctx) => states.push(`connecting ${ctx.code} ${ctx.reason}`));
  client.on('disconnected', (ctx) => states.push(`disconnected ${ctx.code} ${ctx.reason}`));
  // A client disconnected for good fails the test at once, whatever it awaits then.
  const dropped = next(client, 'disconnected', 'a disconnect', { ms: TEST_MS })
    .then((ctx) => assert.fail(`the client was disconnected (${ctx.code} ${ctx.reason}); ` +
      `connection events: ${states.join('; ')}`));
  dropped.catch(() => {});
  const channel = unique('refresh');
  const sub = client.newSubscription(channel);
  const rec = new Recorder(sub);
  await subscribed(sub);
  await Promise.race([dropped, guard(gotToken, (EXPIRES_IN + 5) * 1000, 'the SDK to ask getToken for a fresh token')]);
  // Commands are answered in order: once this answer is in, the hub has handled the
  // refresh the SDK sent right after getToken resolved.
  await Promise.race([dropped, sub.presenceStats().catch((e) => assert.fail(
    `presence_stats after the refresh failed (${JSON.stringify(e)}); connection events: ${states.join('; ')}`))]);
  const published = await api('publish', { channel, data: { seq: 1 } });
  await rec.reach(published.offset);
  assert.deepEqual(states, [], 'the connection was never dropped around the token expiry');
  assert.equal(rec.subscribedCtx.length, 1, 'no resubscribe');
  client.disconnect();
});

test('subscribe: positioned, recoverable; publications from the API arrive with their offsets', async () => {
  const channel = unique('news');
  const client = newClient(wsUrl(HUB_PORT), 'alice');
  await connected(client);
  const sub = client.newSubscription(channel);
  const rec = new Recorder(sub);
  const ctx = await subscribed(sub);
  assert.equal(ctx.channel, channel);
  assert.equal(ctx.recoverable, true, 'every channel keeps a recoverable stream');
  assert.equal(ctx.positioned, true);
  assert.equal(ctx.wasRecovering, false, 'a first subscribe does not recover');
  assert.equal(ctx.recovered, false);
  assert.ok(ctx.streamPosition && ctx.streamPosition.epoch, 'the subscribed context carries the epoch');
  assert.equal(ctx.streamPosition.offset, 0, 'a new channel starts at offset 0');

  const results = [];
  for (let seq = 1; seq <= 5; seq++) results.push(await api('publish', { channel, data: { seq } }));
  assert.deepEqual(results.map((r) => r.offset), [1, 2, 3, 4, 5], 'API publish offsets');
  for (const r of results) assert.equal(r.epoch, ctx.streamPosition.epoch, 'API publish epoch');
  await rec.count(5);
  assert.deepEqual(rec.pubs.map((p) => [p.seq, p.offset]), [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]);
  assert.equal(rec.pubs[0].ctx.channel, channel);
  assert.equal(rec.pubs[0].ctx.info, undefined, 'an API publication has no publisher info');

  // A channel whose namespace is not configured: the subscription ends with 102.
  const unknown = client.newSubscription(`${unique('nowhere')}:room`);
  const gone = next(unknown, 'unsubscribed', "'unsubscribed' for an unknown namespace");
  unknown.subscribe();
  assert.equal((await gone).code, 102, 'unknown channel error code');
  client.disconnect();
});

test('publish from the SDK: the ack comes after the commit; subscribers get it with the publisher info', async () => {
  const channel = `pub:${unique('room')}`;
  const alice = newClient(wsUrl(HUB_PORT), 'alice', { claims: { info: { name: 'Alice' } } });
  const bob = newClient(wsUrl(HUB_PORT), 'bob');
  const aliceCtx = await connected(alice);
  await connected(bob);
  const aliceSub = alice.newSubscription(channel);
  const bobSub = bob.newSubscription(channel);
  const bobRec = new Recorder(bobSub);
  await subscribed(aliceSub);
  await subscribed(bobSub);

  for (let seq = 1; seq <= 3; seq++) {
    const ack = await guard(aliceSub.publish(payload({ seq, text: `hello ${seq}` })), STEP_MS, `publish ack #${seq}`);
    assert.deepEqual(ack, {}, 'publish result');
    // Acknowledged means stored: the history already has it.
    const history = await api('history', { channel, limit: -1 });
    assert.equal(history.offset, seq, `history top offset right after ack #${seq}`);
    assert.deepEqual(history.publications.at(-1).data, { seq, text: `hello ${seq}` });
  }
  await bobRec.count(3);
  assert.deepEqual(bobRec.pubs.map((p) => [p.seq, p.offset]), [[1, 1], [2, 2], [3, 3]]);
  const { info } = bobRec.pubs[0].ctx;
  assert.ok(info, 'a client publication carries the publisher info');
  assert.equal(info.user, 'alice');
  assert.equal(info.client, aliceCtx.client);
  assert.deepEqual(value(info.connInfo), { name: 'Alice' }, 'conn info from the token info claim');

  // Publishing where the namespace does not allow it (default: subscribers may not).
  const plain = unique('readonly');
  const plainSub = alice.newSubscription(plain);
  await subscribed(plainSub);
  await assert.rejects(plainSub.publish(payload({ nope: true })), (e) => e.code === 103,
    'publish to a channel without allow_publish_for_subscriber is error 103');
  await assert.rejects(alice.publish(`pub:${unique('other')}`, payload({ x: 1 })), (e) => e.code === 103,
    'publish to a channel the client is not subscribed to is error 103');
  alice.disconnect();
  bob.disconnect();
});

test('history: limit, since and reverse', async () => {
  const channel = unique('hist');
  const published = [];
  for (let seq = 1; seq <= 10; seq++) published.push(await api('publish', { channel, data: { seq } }));
  const epoch = published[0].epoch;
  const client = newClient(wsUrl(HUB_PORT), 'alice');
  await connected(client);
  const sub = client.newSubscription(channel);
  const ctx = await subscribed(sub);
  assert.deepEqual(ctx.streamPosition, { offset: 10, epoch }, 'subscribed at the top of the stream');

  const seqs = (r) => r.publications.map((p) => value(p.data).seq);
  const offsets = (r) => r.publications.map((p) => p.offset);

  const top = plain(await sub.history({}));
  assert.deepEqual([top.offset, top.epoch, top.publications.length], [10, epoch, 0],
    'no limit: only the position');
  const all = plain(await sub.history({ limit: -1 }));
  assert.deepEqual(seqs(all), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'limit -1: everything, oldest first');
  assert.deepEqual(offsets(all), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(all.publications[0].channel, channel);
  const first3 = plain(await sub.history({ limit: 3 }));
  assert.deepEqual(offsets(first3), [1, 2, 3], 'limit 3: the oldest three');
  assert.deepEqual([first3.offset, first3.epoch], [10, epoch], 'the position comes with every answer');
  const since = plain(await sub.history({ limit: 3, since: { offset: 4, epoch } }));
  assert.deepEqual(offsets(since), [5, 6, 7], 'since offset 4, limit 3');
  const sinceAll = plain(await sub.history({ limit: -1, since: { offset: 7, epoch } }));
  assert.deepEqual(offsets(sinceAll), [8, 9, 10], 'since offset 7, no limit');
  const newest3 = plain(await sub.history({ limit: 3, reverse: true }));
  assert.deepEqual(offsets(newest3), [10, 9, 8], 'reverse, limit 3: the newest three, newest first');
  const reverseSince = plain(await sub.history({ limit: 3, since: { offset: 8, epoch }, reverse: true }));
  assert.deepEqual(offsets(reverseSince), [7, 6, 5], 'reverse since offset 8: older than 8, newest first');
  await assert.rejects(sub.history({ limit: 3, since: { offset: 4, epoch: 'not-the-epoch' } }),
    (e) => e.code === 112, 'since with another epoch is error 112 (unrecoverable position)');

  // History is for subscribers only.
  await assert.rejects(client.history(unique('hist'), { limit: 1 }), (e) => e.code === 103,
    'history of a channel the client is not subscribed to is error 103');
  client.disconnect();
});

test('presence and presence_stats', async () => {
  const channel = unique('lobby');
  const people = [
    ['alice', { name: 'Alice' }],
    ['alice', { name: 'Alice' }], // a second tab: a second client, the same user
    ['bob', { name: 'Bob' }],
  ];
  const connections = [];
  for (const [user, info] of people) {
    const client = newClient(wsUrl(HUB_PORT), user, { claims: { info } });
    const ctx = await connected(client);
    const sub = client.newSubscription(channel);
    await subscribed(sub);
    connections.push({ user, info, client, sub, id: ctx.client });
  }
  const stats = await connections[0].sub.presenceStats();
  assert.deepEqual(stats, { numClients: 3, numUsers: 2 });
  const { clients: present } = await connections[2].sub.presence();
  assert.deepEqual(Object.keys(present).sort(), connections.map((c) => c.id).sort(),
    'presence is keyed by client id');
  for (const c of connections) {
    assert.equal(present[c.id].user, c.user, `user of ${c.id}`);
    assert.equal(present[c.id].client, c.id);
    assert.deepEqual(value(present[c.id].connInfo), c.info, `connInfo of ${c.id}`);
  }
  const viaApi = await api('presence_stats', { channel });
  assert.deepEqual(viaApi, { num_clients: 3, num_users: 2 }, 'the API agrees');

  // Not subscribed: no presence for you.
  const outsider = newClient(wsUrl(HUB_PORT), 'eve');
  await connected(outsider);
  await assert.rejects(outsider.presence(channel), (e) => e.code === 103,
    'presence of a channel the client is not subscribed to is error 103');
  for (const c of connections) c.client.disconnect();
  outsider.disconnect();
});

test('join and leave events (namespace with join_leave, subscription option joinLeave)', async () => {
  const channel = `jl:${unique('room')}`;
  const alice = newClient(wsUrl(HUB_PORT), 'alice');
  await connected(alice);
  const aliceSub = alice.newSubscription(channel, { joinLeave: true });
  await subscribed(aliceSub);
  // carol subscribes without joinLeave: she must get no join/leave pushes.
  const carol = newClient(wsUrl(HUB_PORT), 'carol');
  await connected(carol);
  const carolSub = carol.newSubscription(channel);
  const carolEvents = [];
  carolSub.on('join', (ctx) => carolEvents.push(['join', ctx.info.user]));
  carolSub.on('leave', (ctx) => carolEvents.push(['leave', ctx.info.user]));
  const carolRec = new Recorder(carolSub);
  // carol's own subscribe is announced to alice.
  const carolJoin = next(aliceSub, 'join', "alice's join event for carol", { filter: (c) => c.info.user === 'carol' });
  const carolCtx = await subscribed(carolSub);
  assert.ok(carolCtx);
  await carolJoin;

  const bob = newClient(wsUrl(HUB_PORT), 'bob', { claims: { info: { name: 'Bob' } } });
  const bobConnected = await connected(bob);
  const bobSub = bob.newSubscription(channel, { joinLeave: true });
  const join = next(aliceSub, 'join', "alice's join event for bob", { filter: (c) => c.info.user === 'bob' });
  await subscribed(bobSub);
  const joinCtx = await join;
  assert.equal(joinCtx.channel, channel);
  assert.equal(joinCtx.info.client, bobConnected.client);
  assert.deepEqual(value(joinCtx.info.connInfo), { name: 'Bob' });

  const leave = next(aliceSub, 'leave', "alice's leave event for bob", { filter: (c) => c.info.user === 'bob' });
  bobSub.unsubscribe();
  const leaveCtx = await leave;
  assert.equal(leaveCtx.channel, channel);
  assert.equal(leaveCtx.info.client, bobConnected.client);
  // The leave went out after bob's presence was removed.
  assert.deepEqual(await aliceSub.presenceStats(), { numClients: 2, numUsers: 2 }, 'presence after the leave');

  // A publication sent after all that reaches carol after any push queued before it:
  // once she has it, she has provably been sent no join or leave.
  const marker = await api('publish', { channel, data: { seq: 'marker' } });
  await carolRec.reach(marker.offset);
  assert.deepEqual(carolEvents, [], 'a subscription without joinLeave gets no join/leave events');
  for (const c of [alice, bob, carol]) c.disconnect();
});

test('recovery after the transport is cut mid-stream: every publication once, in order', { timeout: TEST_MS }, async () => {
  const channel = `rec:${unique('cut')}`;
  const relay = await newRelay(HUB_PORT);
  const client = newClient(relay.url, 'alice');
  await connected(client);
  const sub = client.newSubscription(channel);
  const rec = new Recorder(sub);
  const first = await subscribed(sub);
  assert.equal(first.wasRecovering, false);

  const publisher = new Publisher(channel).start();
  const CUTS = 3;
  for (let cut = 1; cut <= CUTS; cut++) {
    await rec.count(cut * 40, STEP_MS);
    const bridged = relay.bridged;
    relay.cut({ hold: true });
    // The backend keeps publishing while the client is away; let it get 25 more in.
    await publisher.more(25, `while cut off (#${cut})`);
    relay.release();
    const ctx = await rec.subscribedNo(cut + 1);
    assert.ok(relay.bridged > bridged, 'the SDK reconnected through a new relay connection');
    assert.equal(ctx.wasRecovering, true, `cut #${cut}: wasRecovering`);
    assert.equal(ctx.recovered, true, `cut #${cut}: recovered`);
    assert.equal(ctx.recoverable, true);
    assert.equal(ctx.hasRecoveredPublications, true, `cut #${cut}: the subscribe reply carried the missed publications`);
    assert.ok(rec.recoveredWith(cut + 1).length >= 25,
      `cut #${cut}: at least the 25 publications made while cut off came with the subscribe reply ` +
      `(got ${rec.recoveredWith(cut + 1).length})`);
    assert.equal(ctx.streamPosition.epoch, first.streamPosition.epoch, `cut #${cut}: same epoch`);
  }
  await publisher.more(25, 'after the last reconnect');
  await publisher.stop();
  await rec.reach(publisher.lastOffset(), 30000);

  assert.ok(publisher.acked.length >= CUTS * 40 + 25, 'the backend published throughout');
  assert.equal(publisher.failed.length, 0, `failed publishes: ${JSON.stringify(publisher.failed.slice(0, 3))}`);
  assertConsecutive(rec.pubs, 1, 'offsets received');
  assert.deepEqual(rec.pubs.map((p) => [p.seq, p.offset]), publisher.byOffset().map((a) => [a.seq, a.offset]),
    'every acknowledged publication exactly once, in offset order');
  assert.equal(rec.subscribedCtx.length, CUTS + 1, 'one resubscribe per cut');
  client.disconnect();
});

test('recovery after the hub is killed with SIGKILL and restarted (sqlite): every acked publication once, in order', { timeout: TEST_MS }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-sigkill-'));
  let hub = await startHub({ dataDir, port: 0 });
  const port = hub.port;
  const base = `http://127.0.0.1:${port}`;
  const relay = await newRelay(port);
  let hubUp = Promise.resolve();
  let markUp = () => {};

  const channel = `rec:${unique('kill')}`;
  const client = newClient(relay.url, 'alice');
  await connected(client);
  const sub = client.newSubscription(channel);
  const rec = new Recorder(sub);
  const first = await subscribed(sub);
  const publisher = new Publisher(channel, { base: () => base, waitForHub: () => hubUp }).start();

  await rec.count(40);
  relay.cut({ hold: true }); // the SDK's reconnects wait at the relay until released
  hubUp = new Promise((resolve) => { markUp = resolve; });
  const ackedBeforeKill = publisher.acked.length;
  hub.child.kill('SIGKILL');
  const { signal } = await guard(hub.exited, STEP_MS, 'the killed hub to exit');
  assert.equal(signal, 'SIGKILL');
  // Publishing goes on: attempts fail while the hub is down.
  await until(publisher, 'change', () => publisher.failed.length > 0, 'a publish to fail while the hub is down');

  hub = await startHub({ dataDir, port });
  assert.equal(hub.port, port, 'restarted on the same port');
  markUp();
  await publisher.more(25, 'after the restart, before the SDK is let back in');
  relay.release();
  const ctx = await rec.subscribedNo(2, 30000);
  assert.equal(ctx.wasRecovering, true, 'wasRecovering after the restart');
  assert.equal(ctx.recovered, true, 'recovered after the restart (the stream and its epoch survived)');
  assert.equal(ctx.streamPosition.epoch, first.streamPosition.epoch, 'same epoch after the restart');
  assert.ok(rec.recoveredWith(2).length >= 25,
    `at least the 25 publications made after the restart came with the subscribe reply (got ${rec.recoveredWith(2).length})`);
  await publisher.more(25, 'after the reconnect');
  await publisher.stop();
  await rec.reach(publisher.lastOffset(), 30000);

  assert.ok(publisher.acked.length > ackedBeforeKill + 50);
  const epochs = new Set(publisher.acked.map((a) => a.epoch));
  assert.equal(epochs.size, 1, `one epoch across the restart, got ${[...epochs].join(', ')}`);
  assertConsecutive(rec.pubs, 1, 'offsets received');
  // Every acknowledged publication arrived once, at its offset; anything else received
  // is an attempt the hub stored but could not acknowledge before it died.
  const bySeq = new Map();
  for (const p of rec.pubs) {
    assert.ok(!bySeq.has(p.seq), `seq ${p.seq} received twice`);
    bySeq.set(p.seq, p.offset);
  }
  for (const a of publisher.acked) {
    assert.equal(bySeq.get(a.seq), a.offset, `acknowledged seq ${a.seq} (offset ${a.offset}) received at its offset`);
  }
  const failedSeqs = new Set(publisher.failed.map((f) => f.seq));
  for (const p of rec.pubs) {
    if (!publisher.acked.some((a) => a.seq === p.seq)) {
      assert.ok(failedSeqs.has(p.seq), `received seq ${p.seq} was neither acknowledged nor an interrupted attempt`);
    }
  }
  client.disconnect();
  hub.child.kill('SIGTERM');
  await guard(hub.exited, STEP_MS, 'the restarted hub to stop on SIGTERM');
});

test('recovered: false when history no longer covers the position (history_size = 3)', { timeout: TEST_MS }, async () => {
  const channel = `tiny:${unique('gap')}`;
  const relay = await newRelay(HUB_PORT);
  const client = newClient(relay.url, 'alice');
  await connected(client);
  const sub = client.newSubscription(channel);
  const rec = new Recorder(sub);
  const first = await subscribed(sub);
  const one = await api('publish', { channel, data: { seq: 1 } });
  await rec.reach(one.offset);

  relay.cut({ hold: true });
  const missed = [];
  for (let seq = 2; seq <= 6; seq++) missed.push(await api('publish', { channel, data: { seq } }));
  const kept = await api('history', { channel, limit: -1 });
  assert.deepEqual(kept.publications.map((p) => p.offset), [4, 5, 6], 'the hub keeps only the last 3');
  relay.release();
  const ctx = await rec.subscribedNo(2);
  assert.equal(ctx.wasRecovering, true, 'the SDK asked to recover');
  assert.equal(ctx.recovered, false, 'offsets 2 and 3 are gone: not recovered');
  assert.equal(ctx.recoverable, true);
  assert.deepEqual(ctx.streamPosition, { offset: 6, epoch: first.streamPosition.epoch },
    'the new position is the top of the stream');

  const after = await api('publish', { channel, data: { seq: 7 } });
  await rec.reach(after.offset);
  const offsets = rec.pubs.map((p) => p.offset);
  assert.equal(new Set(offsets).size, offsets.length, `no duplicates: ${offsets}`);
  assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), `in order: ${offsets}`);
  assert.equal(offsets[0], 1);
  assert.equal(offsets.at(-1), 7);
  assert.ok(!offsets.includes(2) && !offsets.includes(3), `no publication the hub no longer has: ${offsets}`);
  client.disconnect();
});

if (PROTOBUF) {
  test('Protobuf and JSON clients share a channel: each gets the other\'s publications in its own format', async () => {
    const { Centrifuge: JsonCentrifuge } = require('centrifuge');
    const channel = `pub:${unique('mixed')}`;
    const jsonClient = new JsonCentrifuge(wsUrl(HUB_PORT), {
      token: token({ sub: 'json-user' }), websocket: BrowserLikeWebSocket, timeout: STEP_MS,
    });
    clients.push(jsonClient);
    const pbClient = newClient(wsUrl(HUB_PORT), 'pb-user');
    await connected(jsonClient, 'the JSON client to connect');
    await connected(pbClient, 'the Protobuf client to connect');
    const jsonSub = jsonClient.newSubscription(channel);
    const pbSub = pbClient.newSubscription(channel);
    await subscribed(jsonSub);
    await subscribed(pbSub);

    const atJson = next(jsonSub, 'publication', 'the Protobuf publication at the JSON client');
    await guard(pbSub.publish(payload({ from: 'protobuf', n: 1 })), STEP_MS, 'the Protobuf publish ack');
    const seenByJson = await atJson;
    assert.deepEqual(seenByJson.data, { from: 'protobuf', n: 1 }, 'the JSON client gets the value');
    assert.equal(seenByJson.info.user, 'pb-user');

    const atPb = next(pbSub, 'publication', 'the JSON publication at the Protobuf client', {
      filter: (ctx) => plain(ctx.offset) === 2,
    });
    await guard(jsonSub.publish({ from: 'json', n: 2 }), STEP_MS, 'the JSON publish ack');
    const seenByPb = await atPb;
    assert.ok(seenByPb.data instanceof Uint8Array, 'the Protobuf client gets bytes');
    assert.deepEqual(value(seenByPb.data), { from: 'json', n: 2 }, 'which are the JSON of the value');
    assert.equal(seenByPb.info.user, 'json-user');
    jsonClient.disconnect();
    pbClient.disconnect();
  });

  test('Protobuf: binary publications reach Protobuf clients byte for byte, JSON clients as base64', async () => {
    const { Centrifuge: JsonCentrifuge } = require('centrifuge');
    const channel = `pub:${unique('binary')}`;
    const publisher = newClient(wsUrl(HUB_PORT), 'alice');
    const reader = newClient(wsUrl(HUB_PORT), 'bob');
    const jsonClient = new JsonCentrifuge(wsUrl(HUB_PORT), {
      token: token({ sub: 'carol' }), websocket: BrowserLikeWebSocket, timeout: STEP_MS,
    });
    clients.push(jsonClient);
    await connected(publisher, 'the publisher to connect');
    await connected(reader, 'the Protobuf reader to connect');
    await connected(jsonClient, 'the JSON reader to connect');
    const pubSub = publisher.newSubscription(channel);
    const readSub = reader.newSubscription(channel);
    const jsonSub = jsonClient.newSubscription(channel);
    await subscribed(pubSub);
    await subscribed(readSub);
    await subscribed(jsonSub);

    const bytes = new Uint8Array([0, 159, 146, 150, 10, 255]);
    const atReader = next(readSub, 'publication', 'the binary publication at the Protobuf reader');
    const atJson = next(jsonSub, 'publication', 'the binary publication at the JSON reader');
    await guard(pubSub.publish(bytes), STEP_MS, 'the binary publish ack');
    assert.deepEqual([...(await atReader).data], [...bytes], 'the Protobuf reader gets the same bytes');
    assert.equal((await atJson).data, Buffer.from(bytes).toString('base64'),
      'the JSON reader gets a base64 string (protobuf\'s JSON mapping of bytes)');

    // Text that is not JSON is binary too; the HTTP API publishes binary as b64data.
    const atReader2 = next(readSub, 'publication', 'the API\'s binary publication', {
      filter: (ctx) => plain(ctx.offset) === 2,
    });
    const sent = await api('publish', { channel, b64data: Buffer.from('plain text').toString('base64') });
    assert.equal(sent.offset, 2);
    assert.equal(new TextDecoder().decode((await atReader2).data), 'plain text');

    const history = await readSub.history({ limit: -1 });
    assert.deepEqual(history.publications.map((p) => [...p.data]),
      [[...bytes], [...new TextEncoder().encode('plain text')]], 'history keeps the bytes');

    // Other payloads go to the backend as JSON: a non-JSON RPC is refused, the connection goes on.
    await assert.rejects(publisher.rpc('m', new Uint8Array([0, 1])), (e) => e.code === 107,
      'an RPC whose data is not JSON: error 107 (bad request)');
    await assert.rejects(api('publish', { channel, b64data: 'not base64!' }), (e) => e.code === 107,
      'b64data that is not base64: error 107');
    assert.equal(publisher.state, 'connected');
    for (const c of [publisher, reader, jsonClient]) c.disconnect();
  });
}
