#!/usr/bin/env node
// Two `duplex serve` nodes on one Redis (the Redis engine, docs/scaling.md), with real
// peers: the official centrifuge-js (node_modules, Node build, `ws` as its WebSocket) and
// our own client module (web/duplex-client.js, loaded as the ES module it is, with `ws`
// as its global WebSocket when Node has none).
//   1. presence across nodes: two clients on node A (through a TCP relay) and one on
//      node B, subscribed to one channel; `presence` over either node's API lists all
//      three, and presence_stats agrees;
//   2. kill -9 of node A while a backend publishes through node B's HTTP API every
//      ~50 ms: the relay (the load balancer of this test) is re-pointed to node B once
//      the backend has had publications acknowledged that the clients could not get;
//      both clients reconnect through it to node B, resubscribe with recovery (the
//      missed publications come with the subscribe reply) and, once the backend stops,
//      each client (and the client on node B, which never reconnected) has delivered
//      every acknowledged offset exactly once, in order: 1..N, with no gap, no duplicate,
//      one epoch.
// This file starts its own redis-server (Debian's /usr/bin/redis-server, installed by
// scripts/setup-deps, on a free port, no persistence, a temporary dir) and both hubs,
// from (both required):
//   HUB_BIN       the duplex binary (built with the Redis engine)
//   HUB_PID_FILE  where the PIDs of redis-server and the hubs are appended, so that
//                 scripts/hub-interop stops them even if this process dies first
// Optional: REDIS_SERVER (default /usr/bin/redis-server).
// Nothing waits on a clock: every step awaits an event, a process line or a condition
// re-checked at each change; the timeouts only turn a hang into a failure. (The backend's
// ~50 ms between publishes is its pace, not a synchronisation.)
// Prints PASS/FAIL per check and `scaleout: N passed, M failed`; exits 1 on any failure.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { EventEmitter } = require('node:events');
const { pathToFileURL } = require('node:url');
const { setTimeout: delay } = require('node:timers/promises');
const WebSocket = require('ws');
const { Centrifuge } = require('centrifuge');
const support = require('./support');

const { guard } = support;
const REDIS_SERVER = process.env.REDIS_SERVER || '/usr/bin/redis-server';
const DUPLEX_CLIENT = path.join(__dirname, '../../web/duplex-client.js');
const TIMEOUT_MS = 20000; // one awaited condition (shared, busy CPUs)
const PUBLISH_EVERY_MS = 50; // the backend's pace
const BEFORE_KILL = 30; // publications every client has before node A is killed
const DURING_OUTAGE = 10; // acknowledged by node B while the clients have no node
const AFTER_RECOVERY = 20; // acknowledged after both clients resubscribed
const SECRET = crypto.randomBytes(32).toString('hex');
const API_KEY = crypto.randomBytes(16).toString('hex');
const ROOM = `rec:scaleout-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;

const checks = new support.Checks();
const check = (name, body) => checks.check(name, body);

function fatal(message) {
  console.log(`FAIL scaleout: ${message}`);
  console.log('scaleout: 0 passed, 1 failed');
  process.exit(1);
}

function assert(ok, message) {
  if (!ok) throw new Error(message);
}

const until = (emitter, event, condition, what, ms = TIMEOUT_MS) =>
  support.until(emitter, event, condition, what, ms);

// centrifuge-js 5.7.4 dispatches publications out of order when `ws` emits several
// frames parsed from one TCP read in the same tick (browsers deliver one message per
// task): allowSynchronousEvents: false makes ws behave like a browser (as in
// sdk_test.js). And like a browser's, its 'error' event is only an event: ws throws an
// 'error' nobody listens to (a refused handshake), which web/duplex-client.js, written
// for browsers, does not listen to (it handles the close that follows).
class BrowserLikeWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { allowSynchronousEvents: false });
    this.on('error', () => {});
  }
}

/** An HS256 JWT (what a backend gives its users), signed with node:crypto. */
function token(claims) {
  const part = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  const signature = crypto.createHmac('sha256', SECRET).update(unsigned).digest('base64url');
  return `${unsigned}.${signature}`;
}

const wsUrl = (port) => `ws://127.0.0.1:${port}/connection/websocket`;

/** POST /api/METHOD on the hub at `base`; returns `result`, throws with the hub's error. */
async function api(base, method, body) {
  const response = await fetch(`${base}/api/${method}`, {
    method: 'POST',
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  let reply;
  try {
    reply = JSON.parse(text);
  } catch {
    throw new Error(`${base}/api/${method}: HTTP ${response.status}, not JSON: ${text.slice(0, 200)}`);
  }
  if (reply.error || response.status !== 200) {
    throw new Error(`${base}/api/${method}: HTTP ${response.status} ${JSON.stringify(reply).slice(0, 200)}`);
  }
  return reply.result;
}

// ---- processes -------------------------------------------------------------------

const children = new Set(); // redis-server; the hubs are in `hubs`
const hubs = new Set();
process.on('exit', () => {
  for (const child of [...hubs, ...children]) child.kill('SIGKILL');
});

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts redis-server on a free port of 127.0.0.1 (no RDB, no AOF, its files in `dir`)
 * and resolves once it says it is ready: {child, exited, port, url}. A port taken
 * between freePort() and redis-server's bind is tried again with another.
 */
async function startRedis(dir) {
  let lastError;
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    const port = await freePort();
    const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid) fs.appendFileSync(process.env.HUB_PID_FILE, `${child.pid}\n`);
    children.add(child);
    const log = fs.createWriteStream(path.join(dir, 'redis.log'), { flags: 'a' });
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }));
    let output = '';
    const ready = new Promise((resolve, reject) => {
      child.on('error', reject);
      for (const stream of [child.stdout, child.stderr]) {
        stream.on('data', (chunk) => {
          log.write(chunk);
          output += chunk.toString();
          if (/Ready to accept connections/.test(output)) resolve();
        });
      }
      exited.then(({ code, signal }) => reject(new Error(
        `redis-server exited (code ${code}, signal ${signal}) before it was ready:\n${output.slice(-1500)}`)));
    });
    try {
      await guard(ready, TIMEOUT_MS, `redis-server on port ${port} to be ready (log: ${dir}/redis.log)`);
      return { child, exited, port, url: `redis://127.0.0.1:${port}` };
    } catch (e) {
      lastError = e;
      child.kill('SIGKILL');
      if (!/Address already in use/.test(output)) break;
    }
  }
  throw lastError;
}

/** Starts node NAME (`duplex serve --engine redis`) with its own data dir; resolves once it listens. */
function startNode(dir, name, redisUrl) {
  const dataDir = path.join(dir, name);
  fs.mkdirSync(dataDir, { recursive: true });
  return support.startHub({
    bin: process.env.HUB_BIN,
    args: ['--config', path.join(dir, 'config.toml'), '--host', '127.0.0.1', '--port', '0',
      '--data-dir', dataDir, '--engine', 'redis', '--redis', redisUrl,
      '--token-secret', SECRET, '--api-key', API_KEY],
    pidFile: process.env.HUB_PID_FILE,
    logFile: path.join(dir, `node-${name}.log`),
    hubs,
    ms: TIMEOUT_MS,
  }).then((hub) => ({ ...hub, name }));
}

// ---- the relay -------------------------------------------------------------------


// ---- the backend -----------------------------------------------------------------

/**
 * Publishes {seq} to ROOM through one node's HTTP API every PUBLISH_EVERY_MS until
 * stopped. Only answered publishes count as acknowledged ({seq, offset, epoch}); any
 * other outcome (an error answer, no answer) is a failure, kept with its seq.
 */
class Backend extends EventEmitter {
  constructor(base) {
    super();
    this.base = base;
    this.acked = [];
    this.failures = [];
    this.seq = 0;
    this.stopped = false;
  }

  async run() {
    while (!this.stopped) {
      const seq = ++this.seq;
      try {
        const result = await api(this.base, 'publish', { channel: ROOM, data: { seq } });
        this.acked.push({ seq, offset: result.offset, epoch: result.epoch });
      } catch (e) {
        this.failures.push({ seq, error: String(e.cause || e.message || e) });
      }
      this.emit('change');
      await delay(PUBLISH_EVERY_MS);
    }
  }

  start() {
    this.done = this.run();
    return this;
  }

  async stop() {
    this.stopped = true;
    if (this.done) await guard(this.done, TIMEOUT_MS, 'the backend to stop');
  }

  /** Resolves once `n` more publications than now are acknowledged. */
  more(n, what) {
    const target = this.acked.length + n;
    return until(this, 'change', () => this.acked.length >= target,
      `${n} more acknowledged publications (${what}; acked ${this.acked.length}, failures ${this.failures.length})`);
  }

  lastOffset() {
    return Math.max(0, ...this.acked.map((a) => a.offset));
  }
}

// ---- what the clients deliver ----------------------------------------------------

/**
 * One client's record of ROOM: the offsets (and seqs) it delivered, in delivery order,
 * and its 'subscribed' events as {recovering, recovered, count (publications that came
 * with the subscribe reply), epoch}.
 */
class Seen extends EventEmitter {
  constructor(name) {
    super();
    this.name = name;
    this.offsets = [];
    this.seqs = [];
    this.subscribed = [];
    this.missed = 0;
    this.errors = [];
    this.client = null; // the hub's id for the current connection
  }

  publication(offset, data) {
    this.offsets.push(offset);
    this.seqs.push(data && data.seq);
    this.emit('change');
  }

  wasSubscribed(detail) {
    this.subscribed.push(detail);
    this.emit('change');
  }

  last() {
    return this.offsets.length ? this.offsets[this.offsets.length - 1] : 0;
  }

  count(n, what) {
    return until(this, 'change', () => this.offsets.length >= n,
      `${this.name}: ${n} publications (${what}; has ${this.offsets.length})`);
  }

  reach(offset, what) {
    return until(this, 'change', () => this.offsets.some((o) => o >= offset),
      `${this.name}: offset ${offset} (${what}; last ${this.last()})`);
  }

  subscribedNo(n, what) {
    return until(this, 'change', () => this.subscribed.length >= n,
      `${this.name}: 'subscribed' #${n} (${what}; subscribed events: ${JSON.stringify(this.subscribed)}, ` +
      `errors: ${JSON.stringify(this.errors).slice(0, 300)})`).then(() => this.subscribed[n - 1]);
  }
}

/** centrifuge-js connected to `url` as `user`, subscribed to ROOM; resolves once subscribed. */
async function officialClient(url, user, seen, stopList) {
  const client = new Centrifuge(url, {
    token: token({ sub: user }),
    websocket: BrowserLikeWebSocket,
    name: 'scaleout-centrifuge-js',
    minReconnectDelay: 50,
    maxReconnectDelay: 500,
    timeout: 10000,
  });
  stopList.push(() => client.disconnect());
  client.on('connected', (ctx) => { seen.client = ctx.client; });
  client.on('error', (ctx) => seen.errors.push(`client: ${ctx.error && ctx.error.message}`));
  const sub = client.newSubscription(ROOM);
  // The SDK hands the publications of a subscribe reply to 'publication' synchronously
  // right after 'subscribed': those are the ones counted as having come with it.
  let withReply = null;
  sub.on('subscribed', (ctx) => {
    withReply = {
      recovering: ctx.wasRecovering,
      recovered: ctx.recovered,
      hasRecoveredPublications: ctx.hasRecoveredPublications,
      epoch: ctx.streamPosition && ctx.streamPosition.epoch,
      count: 0,
    };
    const detail = withReply;
    process.nextTick(() => { if (withReply === detail) withReply = null; });
    seen.wasSubscribed(detail);
  });
  sub.on('publication', (ctx) => {
    if (withReply) withReply.count += 1;
    seen.publication(ctx.offset, ctx.data);
  });
  sub.on('error', (ctx) => seen.errors.push(`subscription: ${ctx.error && ctx.error.message}`));
  sub.subscribe();
  client.connect();
  await seen.subscribedNo(1, 'the first subscribe');
  return client;
}

/** Loads web/duplex-client.js, the ES module the browser gets, into this process. */
async function loadDuplexClient() {
  if (typeof globalThis.WebSocket === 'undefined') globalThis.WebSocket = BrowserLikeWebSocket;
  // package.json declares no "type", so Node (>= 20.19, 22.12) detects the module
  // syntax and warns once about it; that warning, and only it, is not printed.
  const printers = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w.code !== 'MODULE_TYPELESS_PACKAGE_JSON') for (const print of printers) print(w);
  });
  return import(pathToFileURL(DUPLEX_CLIENT).href);
}

/** Our client connected to `url` as `user`, subscribed to ROOM; resolves once subscribed. */
async function ourClient(Hub, url, user, seen, stopList) {
  const hub = new Hub(url, { token: token({ sub: user }), name: 'scaleout-duplex-client' });
  stopList.push(() => hub.disconnect());
  seen.states = [];
  hub.addEventListener('state', (e) => {
    seen.states.push(e.detail.state);
    if (e.detail.state === 'connected') seen.client = e.detail.client;
  });
  hub.addEventListener('error', (e) => seen.errors.push(`hub: ${e.detail && e.detail.message}`));
  const sub = hub.subscribe(ROOM);
  sub.addEventListener('publication', (e) => seen.publication(e.detail.offset, e.detail.data));
  sub.addEventListener('subscribed', (e) => seen.wasSubscribed({ ...e.detail, epoch: sub.position && sub.position.epoch }));
  sub.addEventListener('missed', () => { seen.missed += 1; });
  sub.addEventListener('error', (e) => seen.errors.push(`subscription: ${e.detail && e.detail.message}`));
  hub.connect();
  await seen.subscribedNo(1, 'the first subscribe');
  return hub;
}

/** Asserts `seen` delivered exactly the backend's acknowledged publications: offsets 1..N, each once, in order, with its seq. */
function assertDeliveredAll(seen, backend) {
  const acked = [...backend.acked].sort((a, b) => a.offset - b.offset);
  const n = acked.length;
  for (let i = 0; i < Math.max(n, seen.offsets.length); i += 1) {
    if (seen.offsets[i] !== i + 1) {
      const around = seen.offsets.slice(Math.max(0, i - 3), i + 4).join(', ');
      const kind = seen.offsets[i] === undefined ? 'missing'
        : seen.offsets[i] > i + 1 ? 'a gap' : 'a duplicate or reorder';
      throw new Error(`${seen.name}: delivery #${i + 1} is offset ${seen.offsets[i]}, expected ${i + 1} ` +
        `(${kind}; delivered ${seen.offsets.length}, acked ${n}; offsets around it: ${around})`);
    }
  }
  for (let i = 0; i < n; i += 1) {
    assert(seen.seqs[i] === acked[i].seq,
      `${seen.name}: offset ${i + 1} carried seq ${seen.seqs[i]}, the backend's publish acked at it was seq ${acked[i].seq}`);
  }
}

// ---- the run ---------------------------------------------------------------------

async function main() {
  for (const name of ['HUB_BIN', 'HUB_PID_FILE']) {
    if (!process.env[name]) fatal(`${name} is not set (run through scripts/hub-interop)`);
  }
  if (!fs.existsSync(process.env.HUB_BIN)) fatal(`no duplex binary at ${process.env.HUB_BIN}`);
  if (!fs.existsSync(REDIS_SERVER)) fatal(`no redis-server at ${REDIS_SERVER} (scripts/setup-deps installs Debian's)`);
  if (!fs.existsSync(DUPLEX_CLIENT)) fatal(`no ${DUPLEX_CLIENT}`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-scaleout-'));
  fs.mkdirSync(path.join(dir, 'redis'));
  fs.writeFileSync(path.join(dir, 'config.toml'), `
redis_prefix = "scaleout-${process.pid}"

[channels]
history_size = 1000
history_ttl = "1h"

# Recovery streams (the [channels] defaults, named for what they are used for here).
[namespaces.rec]
history_size = 1000
`);

  const { Hub } = await loadDuplexClient().catch((e) => fatal(`could not load ${DUPLEX_CLIENT}: ${e.stack || e}`));
  const redis = await startRedis(path.join(dir, 'redis')).catch((e) => fatal(e.message));
  const [nodeA, nodeB] = await Promise.all([startNode(dir, 'a', redis.url), startNode(dir, 'b', redis.url)])
    .catch((e) => fatal(e.message));
  const relay = await new support.Relay(nodeA.port).listen();
  const stopList = [];
  const backend = new Backend(nodeB.base);
  const official = new Seen('centrifuge-js (relay, node A then B)');
  const ours = new Seen('duplex-client.js (relay, node A then B)');
  const onB = new Seen('centrifuge-js on node B');
  let ready = false;
  let recovered = false;
  try {
    await check('setup: redis-server, two nodes on it, three clients subscribed to one rec: channel', async () => {
      await officialClient(relay.url, 'ada', official, stopList);
      await ourClient(Hub, relay.url, 'bea', ours, stopList);
      await officialClient(wsUrl(nodeB.port), 'cyd', onB, stopList);
      assert(relay.bridgedTo(nodeA.port) === 2,
        `the relay bridged ${relay.bridgedTo(nodeA.port)} connections to node A, expected 2`);
      for (const seen of [official, ours, onB]) {
        assert(seen.subscribed[0].recovering === false, `${seen.name}: the first subscribe says recovering`);
        assert(seen.client, `${seen.name}: no client id`);
      }
      ready = true;
    });

    await check('presence across nodes: either node\'s API lists the two clients on A and the one on B', async () => {
      assert(ready, 'not run: the setup failed');
      const expected = { [official.client]: 'ada', [ours.client]: 'bea', [onB.client]: 'cyd' };
      for (const node of [nodeA, nodeB]) {
        const { presence } = await api(node.base, 'presence', { channel: ROOM });
        const got = Object.fromEntries(Object.entries(presence || {}).map(([id, info]) => [id, info.user]));
        assert(JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(expected).sort()),
          `node ${node.name}: presence is ${JSON.stringify(presence)}, expected clients ${JSON.stringify(expected)}`);
        for (const [id, info] of Object.entries(presence)) {
          assert(info.client === id, `node ${node.name}: presence entry ${id} names client ${info.client}`);
        }
        const stats = await api(node.base, 'presence_stats', { channel: ROOM });
        assert(stats.num_clients === 3 && stats.num_users === 3,
          `node ${node.name}: presence_stats is ${JSON.stringify(stats)}, expected 3 clients, 3 users`);
      }
    });

    await check('kill -9 of node A while a backend publishes through node B: both clients reconnect through the relay to node B and recover', async () => {
      assert(ready, 'not run: the setup failed');
      backend.start();
      for (const seen of [official, ours, onB]) await seen.count(BEFORE_KILL, 'before the kill');
      nodeA.child.kill('SIGKILL');
      const { signal } = await guard(nodeA.exited, TIMEOUT_MS, 'node A to exit after SIGKILL');
      assert(signal === 'SIGKILL', `node A exited with ${signal}, not SIGKILL`);
      // Node B goes on acknowledging; the clients, with no node, cannot get these.
      await backend.more(DURING_OUTAGE, 'while the clients have no node');
      const atRepoint = backend.lastOffset();
      const lastBefore = { official: official.last(), ours: ours.last() };
      for (const seen of [official, ours]) {
        assert(seen.last() < atRepoint, `${seen.name} delivered offset ${seen.last()} with node A dead ` +
          `(node B acked up to ${atRepoint})`);
        assert(seen.subscribed.length === 1, `${seen.name} resubscribed before the relay pointed at node B`);
      }
      relay.repoint(nodeB.port);

      const checkResubscribe = async (seen, before) => {
        const ctx = await seen.subscribedNo(2, 'after the relay was re-pointed to node B');
        assert(ctx.recovering === true && ctx.recovered === true,
          `${seen.name}: the resubscribe says ${JSON.stringify(ctx)}, not recovering and recovered`);
        assert(ctx.epoch === seen.subscribed[0].epoch,
          `${seen.name}: epoch ${ctx.epoch} after the resubscribe, ${seen.subscribed[0].epoch} before`);
        assert(ctx.count >= atRepoint - before,
          `${seen.name}: ${ctx.count} publications came with the subscribe reply; it had offset ${before} ` +
          `and node B had acked up to ${atRepoint} before the relay pointed at it`);
      };
      await Promise.all([checkResubscribe(official, lastBefore.official), checkResubscribe(ours, lastBefore.ours)]);
      const { hasRecoveredPublications } = official.subscribed[1];
      assert(hasRecoveredPublications === true, `centrifuge-js: hasRecoveredPublications is ${hasRecoveredPublications}`);
      assert(ours.missed === 0, `duplex-client.js fired 'missed' ${ours.missed} times`);
      assert(relay.bridgedTo(nodeB.port) >= 2,
        `the relay bridged ${relay.bridgedTo(nodeB.port)} connections to node B, expected both clients`);
      recovered = true;
      console.log(`  node B acked up to offset ${atRepoint} before the relay pointed at it; with the subscribe reply, ` +
        `centrifuge-js got ${official.subscribed[1].count} (it had ${lastBefore.official}), ` +
        `duplex-client.js ${ours.subscribed[1].count} (it had ${lastBefore.ours})`);
      await backend.more(AFTER_RECOVERY, 'after both clients recovered');
    });

    await backend.stop().catch((e) => console.log(`FAIL ${e.message}`));
    const last = backend.lastOffset();

    await check('the backend: every publish through node B acknowledged, offsets 1..N, one epoch', async () => {
      assert(backend.acked.length > 0, 'nothing acknowledged');
      assert(backend.failures.length === 0, `${backend.failures.length} publishes failed: ` +
        JSON.stringify(backend.failures.slice(0, 3)));
      const offsets = backend.acked.map((a) => a.offset);
      for (let i = 0; i < offsets.length; i += 1) {
        assert(offsets[i] === i + 1, `ack #${i + 1} has offset ${offsets[i]}`);
      }
      const epochs = new Set(backend.acked.map((a) => a.epoch));
      assert(epochs.size === 1, `epochs: ${[...epochs].join(', ')}`);
      assert(!ready || epochs.has(official.subscribed[0].epoch),
        `the acks' epoch is not the one the clients subscribed at (${official.subscribed[0].epoch})`);
    });

    for (const seen of [official, ours]) {
      await check(`${seen.name}: every acknowledged offset delivered exactly once, in order`, async () => {
        assert(recovered, 'not run: the kill -9 check failed');
        await seen.reach(last, 'after the backend stopped');
        assertDeliveredAll(seen, backend);
        assert(seen.subscribed.length === 2, `${seen.subscribed.length} 'subscribed' events, expected 2`);
      });
    }

    await check(`${onB.name} (never reconnected): every acknowledged offset delivered exactly once, in order`, async () => {
      assert(ready, 'not run: the setup failed');
      await onB.reach(last, 'after the backend stopped');
      assertDeliveredAll(onB, backend);
      assert(onB.subscribed.length === 1, `${onB.subscribed.length} 'subscribed' events, expected 1`);
    });
  } finally {
    await backend.stop().catch(() => {});
    for (const stop of stopList) stop();
    relay.close();
    const logs = [path.join(dir, 'node-a.log'), path.join(dir, 'node-b.log')];
    for (const log of logs) {
      const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
      if (/panicked/.test(text)) {
        checks.failed += 1;
        console.log(`FAIL ${log} has a panic: ${text.slice(text.indexOf('panicked') - 200, text.indexOf('panicked') + 300)}`);
      }
    }
    if (nodeB.child.exitCode !== null || nodeB.child.signalCode !== null) {
      checks.failed += 1;
      console.log(`FAIL node B exited during the tests (code ${nodeB.child.exitCode}, signal ${nodeB.child.signalCode})`);
    }
    for (const [what, proc] of [['node B', nodeB], ['node A', nodeA], ['redis-server', redis]]) {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) continue;
      proc.child.kill('SIGTERM');
      await guard(proc.exited, TIMEOUT_MS, `${what} to stop on SIGTERM`).catch((e) => {
        checks.failed += 1;
        console.log(`FAIL ${e.message}`);
        proc.child.kill('SIGKILL');
      });
    }
    if (checks.failed === 0) fs.rmSync(dir, { recursive: true, force: true });
    else console.log(`logs (node-a.log, node-b.log, redis/redis.log) kept in ${dir}`);
  }
  checks.finish('scaleout');
}

main().catch((e) => { console.log(`FAIL scaleout: ${e.stack || e}`); process.exit(1); });
