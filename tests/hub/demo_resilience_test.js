#!/usr/bin/env node
// The demo page (GET /, web/index.html with web/duplex-client.js) in Debian's Chromium
// (playwright-core) while the hub fails under it, with a backend publishing to the four
// ticker channels over the HTTP API the whole time:
//   1. the hub is killed with SIGKILL and restarted on the same port and data dir: the
//      page reconnects, recovers, and has seen every acknowledged ticker offset;
//   2. the network is cut (a TCP relay the page was loaded through drops every socket
//      and stops listening) while the backend goes on: the page recovers what it missed;
//   3. a cut longer than a channel's history (`tiny`, three publications): our client
//      module resubscribes with recovered: false, fires `missed` once, is handed none of
//      the gap, and goes on live;
//   4. the official centrifuge-js browser build (node_modules/centrifuge/dist) and the
//      demo page chat in the same room and agree on data and offsets;
//   5. at phone size (390x844) the page does not scroll sideways.
// This file starts its own hubs (sqlite, a config with `chat`, `ticker` and `tiny`
// namespaces for anonymous clients), from (both required):
//   HUB_BIN       the duplex binary
//   HUB_PID_FILE  where the PIDs of those hubs are appended, so that scripts/hub-interop
//                 stops them even if this process dies first
// Optional: ARTIFACTS (screenshots; default a temp dir), CHROMIUM (default /usr/bin/chromium).
// Prints PASS/FAIL per check and `demo resilience: N passed, M failed`; exits 1 on any failure.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const { setTimeout: delay } = require('node:timers/promises');
const { chromium } = require('playwright-core');
const support = require('./support');

const { CHROMIUM, CHROMIUM_ARGS: ARGS, guard } = support;
const CENTRIFUGE_DIST = path.join(__dirname, '../../node_modules/centrifuge/dist/centrifuge.js');
const TIMEOUT_MS = 30000; // one awaited condition (shared, busy CPUs)
const SYMBOLS = ['DPLX', 'WSKT', 'HUBB', 'SQLT'];
const PUBLISH_EVERY_MS = 75; // per symbol: the backend's pace, not a synchronisation
const SECRET = crypto.randomBytes(32).toString('hex');
const API_KEY = crypto.randomBytes(16).toString('hex');
const ROOM = `resilience-${process.pid}`;

const checks = new support.Checks();
const check = (name, body) => checks.check(name, body);

function fatal(message) {
  console.log(`FAIL demo resilience: ${message}`);
  console.log('demo resilience: 0 passed, 1 failed');
  process.exit(1);
}

const until = (emitter, event, condition, what, ms = TIMEOUT_MS) =>
  support.until(emitter, event, condition, what, ms);

function assert(ok, message) {
  if (!ok) throw new Error(message);
}

// ---- hubs ------------------------------------------------------------------------

const CONFIG = `
allow_anonymous = true

[channels]
history_size = 10000
history_ttl = "1h"

[namespaces.chat]
allow_subscribe_for_anonymous = true
allow_publish_for_anonymous = true
allow_publish_for_subscriber = true
join_leave = true

[namespaces.ticker]
allow_subscribe_for_anonymous = true

# Three publications of history: a longer outage cannot be recovered.
[namespaces.tiny]
allow_subscribe_for_anonymous = true
history_size = 3
`;

const hubs = new Set();
/** Starts `duplex serve` on `port` (0: any) with `dir`; resolves once it listens. */
function startHub(dir, port) {
  return support.startHub({
    bin: process.env.HUB_BIN,
    args: ['--config', path.join(dir, 'config.toml'), '--host', '127.0.0.1', '--port', String(port),
      '--data-dir', path.join(dir, 'data'), '--engine', 'sqlite', '--token-secret', SECRET, '--api-key', API_KEY],
    pidFile: process.env.HUB_PID_FILE,
    logFile: path.join(dir, 'hub.log'),
    hubs,
    ms: TIMEOUT_MS,
  });
}

process.on('exit', () => {
  for (const child of hubs) child.kill('SIGKILL');
});

// ---- the backend -----------------------------------------------------------------

/**
 * Publishes a tick ({symbol, price, t}, the shape of the hub's own demo ticker) to each
 * ticker channel every PUBLISH_EVERY_MS over POST /api/publish, until stopped. Only
 * answered publishes count as acknowledged; a failed attempt (the hub is down) is
 * counted and the next one made after the usual pause.
 */
class Backend extends EventEmitter {
  constructor(base) {
    super();
    this.base = base;
    // {offset, epoch, seq} in ack order; seq numbers each lane's publishes, so the page can
    // tell which publication it was handed at an offset.
    this.acked = Object.fromEntries(SYMBOLS.map((s) => [s, []]));
    this.failures = 0;
    this.hubErrors = []; // the hub answered with an error: never expected
    this.stopped = false;
  }

  async publish(symbol, price, seq) {
    const response = await fetch(`${this.base}/api/publish`, {
      method: 'POST',
      headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        channel: `ticker:${symbol}`,
        data: { symbol, price: Math.round(price * 100) / 100, t: Date.now(), seq },
      }),
      signal: AbortSignal.timeout(5000),
    });
    const reply = await response.json();
    if (reply.error || response.status !== 200) {
      this.hubErrors.push(`${symbol}: HTTP ${response.status} ${JSON.stringify(reply)}`);
      return null;
    }
    return reply.result;
  }

  async lane(symbol) {
    let price = 100 + SYMBOLS.indexOf(symbol) * 50;
    let seq = 0;
    while (!this.stopped) {
      price = Math.max(0.01, price * (1 + (Math.random() - 0.5) / 100));
      seq += 1;
      try {
        const result = await this.publish(symbol, price, seq);
        if (result) this.acked[symbol].push({ offset: result.offset, epoch: result.epoch, seq });
      } catch {
        this.failures += 1;
      }
      this.emit('change');
      await delay(PUBLISH_EVERY_MS);
    }
  }

  start() {
    this.done = Promise.all(SYMBOLS.map((s) => this.lane(s)));
    return this;
  }

  async stop() {
    this.stopped = true;
    await guard(this.done, TIMEOUT_MS, 'the backend to stop');
  }

  /** The highest acknowledged offset per symbol (0 if none). */
  last() {
    return Object.fromEntries(SYMBOLS.map((s) => [s, Math.max(0, ...this.acked[s].map((a) => a.offset))]));
  }

  /** Resolves once every symbol has `n` more acknowledged publications than now. */
  more(n, what) {
    const target = Object.fromEntries(SYMBOLS.map((s) => [s, this.acked[s].length + n]));
    return until(this, 'change', () => SYMBOLS.every((s) => this.acked[s].length >= target[s]),
      `${n} more acknowledged publications per ticker channel (${what})`);
  }
}

// ---- the relay -------------------------------------------------------------------


// ---- pages -----------------------------------------------------------------------

// WebSocket failures are logged by Chromium as console errors; they are expected only
// while the hub or the network is down on purpose.
let outage = false;
const errors = [];
const tolerated = [];
function watchConsole(page, name) {
  const record = (text) => {
    if (outage && /WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/connection\/websocket' failed/.test(text)) {
      tolerated.push(`${name}: ${text}`);
    } else {
      errors.push(`${name}: ${text}`);
    }
  };
  page.on('console', (m) => { if (m.type() === 'error') record(`${m.text()} (${m.location().url})`); });
  page.on('pageerror', (e) => record(e.message));
}

/** page.waitForFunction, failing with `what` and the page's state instead of a bare timeout. */
async function waitFor(page, fn, arg, what) {
  try {
    await page.waitForFunction(fn, arg, { timeout: TIMEOUT_MS });
  } catch (e) {
    const state = await page.evaluate(() => ({
      state: document.getElementById('state').dataset.state,
      text: document.getElementById('state').textContent,
      note: document.getElementById('ticker-note').textContent,
      offsets: window.demo && window.demo.tickerOffsets,
      gaps: window.demo && window.demo.tickerGaps,
    })).catch(() => 'unavailable');
    throw new Error(`waiting for ${what}: ${e.message.split('\n')[0]}; page: ${JSON.stringify(state)}`);
  }
}

/**
 * Opens the demo page at `base`, records every ticker offset and 'subscribed' event it
 * delivers (window.rec), joins chat:ROOM as `name`, waits until connected.
 */
async function openDemo(context, base, name, { viewport } = {}) {
  const page = await context.newPage();
  if (viewport) await page.setViewportSize(viewport);
  page.setDefaultTimeout(TIMEOUT_MS);
  watchConsole(page, name);
  await page.goto(`${base}/`);
  await waitFor(page, () => window.demo && window.demo.hub, undefined, 'window.demo');
  await page.evaluate(() => {
    window.rec = { offsets: {}, seqs: {}, subscribed: {} };
    for (const [channel, sub] of window.demo.hub.subscriptions) {
      if (!channel.startsWith('ticker:')) continue;
      const symbol = channel.slice('ticker:'.length);
      window.rec.offsets[symbol] = [];
      window.rec.seqs[symbol] = {};
      window.rec.subscribed[symbol] = [];
      sub.addEventListener('publication', (e) => {
        window.rec.offsets[symbol].push(e.detail.offset);
        window.rec.seqs[symbol][e.detail.offset] = e.detail.data.seq;
      });
      sub.addEventListener('subscribed', (e) => window.rec.subscribed[symbol].push(e.detail));
    }
  });
  await page.fill('#name', name);
  await page.fill('#room', ROOM);
  await page.click('#join button');
  await waitFor(page, () => document.getElementById('state').dataset.state === 'connected'
    && !document.getElementById('send').disabled, undefined, `${name} to be connected and in the room`);
  return page;
}

/** Waits until every ticker symbol has delivered `n` publications on `page`. */
const tickerFlowing = (page, n, what) => waitFor(page,
  ([symbols, k]) => symbols.every((s) => window.rec.offsets[s] && window.rec.offsets[s].length >= k),
  [SYMBOLS, n], `ticker publications flowing (${what})`);

const pageOffsets = (page) => page.evaluate(() => ({ ...window.demo.tickerOffsets }));
const subscribedCounts = (page) => page.evaluate(() => Object.fromEntries(
  Object.entries(window.rec.subscribed).map(([s, list]) => [s, list.length])));

/**
 * After an outage: waits for the page to be connected, `recovered`, every ticker channel
 * resubscribed with recovery, and its offsets at least `target` per symbol; then checks
 * no gap (the page's count and the recorded offsets).
 */
async function assertRecovered(page, before, target, what) {
  await waitFor(page, () => document.getElementById('state').dataset.state === 'connected',
    undefined, `connected again (${what})`);
  await waitFor(page, () => document.getElementById('ticker-note').textContent === 'recovered',
    undefined, `#ticker-note 'recovered' (${what})`);
  await waitFor(page, ([symbols, b]) => symbols.every((s) => window.rec.subscribed[s].length > b[s]),
    [SYMBOLS, before], `every ticker channel resubscribed (${what})`);
  const resubscribes = await page.evaluate((b) => Object.fromEntries(
    Object.entries(window.rec.subscribed).map(([s, list]) => [s, list.slice(b[s])])), before);
  for (const [symbol, list] of Object.entries(resubscribes)) {
    assert(list.every((d) => d.recovering && d.recovered),
      `${what}: ticker:${symbol} resubscribed without recovering everything: ${JSON.stringify(list)}`);
  }
  await waitFor(page, ([symbols, t]) => symbols.every((s) => window.demo.tickerOffsets[s] >= t[s]),
    [SYMBOLS, target], `ticker offsets reaching ${JSON.stringify(target)} (${what})`);
  await assertNoGap(page, what);
}

async function assertNoGap(page, what) {
  const { gaps, offsets } = await page.evaluate(() => ({ gaps: window.demo.tickerGaps, offsets: window.rec.offsets }));
  assert(gaps === 0, `${what}: window.demo.tickerGaps is ${gaps}`);
  for (const [symbol, list] of Object.entries(offsets)) {
    for (let i = 1; i < list.length; i++) {
      assert(list[i] === list[i - 1] + 1,
        `${what}: ticker:${symbol} delivered offset ${list[i]} after ${list[i - 1]}`);
    }
  }
}

/**
 * Every publication the backend got acknowledged, up to offset `upTo` (what the page was
 * waited for), is the one the page was handed at its offset (by the lane's sequence
 * number in its data), unless it came before the page subscribed; no offset was
 * acknowledged twice (a publication lost by a crash would leave its offset to the next
 * one); one epoch per channel throughout. The backend keeps publishing meanwhile: an
 * offset acknowledged after the wait may reach the backend's HTTP reply before the
 * page's WebSocket, so it is not yet owed.
 */
async function assertSawAcked(page, backend, upTo, what) {
  const { offsets, seqs } = await page.evaluate(() => ({ offsets: window.rec.offsets, seqs: window.rec.seqs }));
  for (const symbol of SYMBOLS) {
    const first = offsets[symbol][0];
    const acked = backend.acked[symbol].map((a) => a.offset);
    const reused = acked.filter((o, i) => acked.indexOf(o) !== i);
    assert(reused.length === 0, `${what}: ticker:${symbol} offsets acknowledged twice: ${reused.slice(0, 5).join(', ')}`);
    const owed = backend.acked[symbol].filter((a) => a.offset >= first && a.offset <= upTo[symbol]);
    assert(owed.length > 0, `${what}: ticker:${symbol}: no acknowledged offset between ${first} and ${upTo[symbol]}`);
    const wrong = owed.filter((a) => seqs[symbol][a.offset] !== a.seq);
    assert(wrong.length === 0, `${what}: ticker:${symbol} acknowledged publications the page was not handed: ` +
      wrong.slice(0, 5).map((a) => `offset ${a.offset} (seq ${a.seq}, page: ${seqs[symbol][a.offset]})`).join(', '));
    const epochs = new Set(backend.acked[symbol].map((a) => a.epoch));
    assert(epochs.size === 1, `${what}: ticker:${symbol} has epochs ${[...epochs].join(', ')}`);
  }
}

/** Waits for one more acknowledged publication per channel, then for the page to reach them all. */
async function assertCaughtUp(page, backend, what) {
  await backend.more(1, `a final publish (${what})`);
  const last = backend.last();
  await waitFor(page, ([symbols, t]) => symbols.every((s) => window.demo.tickerOffsets[s] >= t[s]),
    [SYMBOLS, last], `the page to reach the backend's last acknowledged offsets ${JSON.stringify(last)} (${what})`);
  await assertNoGap(page, what);
  await assertSawAcked(page, backend, last, what);
}

// ---- the run ---------------------------------------------------------------------

async function main() {
  for (const name of ['HUB_BIN', 'HUB_PID_FILE']) {
    if (!process.env[name]) fatal(`${name} is not set (run through scripts/hub-interop)`);
  }
  if (!fs.existsSync(process.env.HUB_BIN)) fatal(`no duplex binary at ${process.env.HUB_BIN}`);
  if (!fs.existsSync(CHROMIUM)) fatal(`no Chromium at ${CHROMIUM} (scripts/setup-deps installs it)`);
  if (!fs.existsSync(CENTRIFUGE_DIST)) fatal(`no centrifuge-js browser build at ${CENTRIFUGE_DIST} (run scripts/setup-deps)`);

  const artifacts = process.env.ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-resilience-shots-'));
  fs.mkdirSync(artifacts, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-resilience-'));
  fs.mkdirSync(path.join(dir, 'data'));
  fs.writeFileSync(path.join(dir, 'config.toml'), CONFIG);
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-resilience-chromium-'));

  let hub = await startHub(dir, 0).catch((e) => fatal(e.message));
  const port = hub.port;
  const base = hub.base;
  const backend = new Backend(base).start();
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1100, height: 800 },
  });
  let relay = null;
  try {
    let ada;
    await check('kill -9 while a backend publishes: the page reconnects, recovers and sees every acked offset', async () => {
      ada = await openDemo(context, base, 'Ada');
      await tickerFlowing(ada, 3, 'before the kill');
      const subscribedBefore = await subscribedCounts(ada);
      outage = true;
      const failuresBefore = backend.failures;
      hub.child.kill('SIGKILL');
      const { signal } = await guard(hub.exited, TIMEOUT_MS, 'the killed hub to exit');
      assert(signal === 'SIGKILL', `the hub exited with ${signal}, not SIGKILL`);
      const pageBefore = await pageOffsets(ada);
      const ackedBefore = backend.last();
      await waitFor(ada, () => document.getElementById('state').dataset.state === 'connecting'
        && document.getElementById('state').textContent === 'reconnecting', undefined, 'reconnecting');
      // The backend keeps trying while the hub is down.
      await until(backend, 'change', () => backend.failures > failuresBefore, 'a publish to fail while the hub is down');
      hub = await startHub(dir, port);
      const target = Object.fromEntries(SYMBOLS.map((s) => [s, Math.max(pageBefore[s], ackedBefore[s]) + 1]));
      await assertRecovered(ada, subscribedBefore, target, 'after the restart');
      outage = false;
      await assertCaughtUp(ada, backend, 'after the restart');
      await ada.screenshot({ path: path.join(artifacts, 'resilience-after-kill.png'), fullPage: true });
    });

    await check('network cut through a relay: the page recovers what the backend published meanwhile', async () => {
      relay = await new support.Relay(port).listen();
      const bea = await openDemo(context, relay.base, 'Bea');
      await tickerFlowing(bea, 3, 'through the relay');
      const subscribedBefore = await subscribedCounts(bea);
      outage = true;
      await relay.stop(TIMEOUT_MS);
      await waitFor(bea, () => document.getElementById('state').dataset.state === 'connecting'
        && document.getElementById('state').textContent === 'reconnecting', undefined, 'reconnecting after the cut');
      await backend.more(10, 'during the cut');
      const duringCut = backend.last();
      const cutOff = await pageOffsets(bea);
      for (const s of SYMBOLS) {
        assert(cutOff[s] < duringCut[s], `ticker:${s}: the page got offset ${cutOff[s]} during the cut (backend: ${duringCut[s]})`);
      }
      await relay.restore();
      await assertRecovered(bea, subscribedBefore, duringCut, 'after the relay is back');
      outage = false;
      await assertCaughtUp(bea, backend, 'after the relay is back');
      await bea.close();
    });

    await check('a cut longer than the history: our client says it missed data', async () => {
      assert(relay, 'no relay (the network-cut check failed early)');
      const page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT_MS);
      watchConsole(page, 'missed');
      await page.route('**/favicon.ico', (route) => route.fulfill({ status: 200, contentType: 'image/x-icon', body: '' }));
      await page.goto(`${relay.base}/healthz`); // the relay's origin, so the Origin check passes
      const channel = `tiny:${ROOM}`;
      const publish = async (n) => {
        const response = await fetch(`${base}/api/publish`, {
          method: 'POST',
          headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
          body: JSON.stringify({ channel, data: { n } }),
          signal: AbortSignal.timeout(5000),
        });
        const reply = await response.json();
        assert(reply.result, `publish ${n} to ${channel}: ${JSON.stringify(reply)}`);
        return reply.result.offset;
      };
      await page.evaluate(async ([url, ch]) => {
        const { Hub } = await import('/duplex-client.js');
        const hub = new Hub(url, { name: 'missed-data-check' });
        const sub = hub.subscribe(ch);
        window.t = { hub, state: 'disconnected', offsets: [], subscribed: [], missed: 0 };
        hub.addEventListener('state', (e) => { window.t.state = e.detail.state; });
        sub.addEventListener('publication', (e) => window.t.offsets.push(e.detail.offset));
        sub.addEventListener('subscribed', (e) => window.t.subscribed.push(e.detail));
        sub.addEventListener('missed', () => { window.t.missed += 1; });
        hub.connect();
      }, [`ws://127.0.0.1:${relay.port}/connection/websocket`, channel]);
      await page.waitForFunction(() => window.t.subscribed.length === 1);
      const first = await publish(1);
      await page.waitForFunction((o) => window.t.offsets.includes(o), first);
      outage = true;
      await relay.stop(TIMEOUT_MS);
      await page.waitForFunction(() => window.t.state === 'connecting');
      // Ten publications into a history of three: the position cannot be recovered.
      let last = first;
      for (let n = 2; n <= 11; n += 1) last = await publish(n);
      await relay.restore();
      await page.waitForFunction(() => window.t.subscribed.length === 2);
      const after = await page.evaluate(() => window.t);
      assert(after.subscribed[1].recovering && !after.subscribed[1].recovered,
        `the resubscribe says ${JSON.stringify(after.subscribed[1])}, not recovering and not recovered`);
      assert(after.missed === 1, `${after.missed} missed events, expected 1`);
      assert(!after.offsets.some((o) => o > first && o <= last),
        `the client was handed part of the gap: ${after.offsets}`);
      outage = false;
      // Live again from the new position.
      const next = await publish(12);
      await page.waitForFunction((o) => window.t.offsets.includes(o), next);
      await page.evaluate(() => window.t.hub.disconnect());
      await page.close();
    });

    await check('the official centrifuge-js browser build and the demo page chat in one room', async () => {
      assert(ada, 'no demo page (the first check failed early)');
      const official = await context.newPage();
      official.setDefaultTimeout(TIMEOUT_MS);
      watchConsole(official, 'centrifuge-js');
      // /healthz is not HTML, so Chromium asks the hub for /favicon.ico (a 404 it logs).
      await official.route('**/favicon.ico', (route) => route.fulfill({ status: 200, contentType: 'image/x-icon', body: '' }));
      await official.goto(`${base}/healthz`); // the hub's origin, so the Origin check passes
      await official.addScriptTag({ path: CENTRIFUGE_DIST });
      const kind = await official.evaluate(() => typeof Centrifuge);
      assert(kind === 'function', `the dist build defined no Centrifuge global (${kind})`);
      const channel = `chat:${ROOM}`;
      await official.evaluate(async ([url, ch]) => {
        const client = new Centrifuge(url, { name: 'centrifuge-js-browser' });
        const sub = client.newSubscription(ch);
        window.official = { client, sub, pubs: [] };
        sub.on('publication', (ctx) => window.official.pubs.push({ data: ctx.data, offset: ctx.offset }));
        sub.subscribe();
        client.connect();
        await sub.ready(20000);
      }, [`ws://127.0.0.1:${port}/connection/websocket`, channel]);

      const fromOfficial = { name: 'Official', text: `hello from centrifuge-js ${process.pid}` };
      await official.evaluate((data) => window.official.sub.publish(data), fromOfficial);
      await waitFor(official, (text) => window.official.pubs.some((p) => p.data.text === text),
        fromOfficial.text, 'centrifuge-js to receive its own publication');
      const own = await official.evaluate((text) => window.official.pubs.find((p) => p.data.text === text), fromOfficial.text);
      assert(JSON.stringify(own.data) === JSON.stringify(fromOfficial), `centrifuge-js got back ${JSON.stringify(own.data)}`);
      const shown = (text) => ada.waitForFunction((t) => [...document.querySelectorAll('#messages li')]
        .find((li) => li.textContent.includes(t)), text).then((h) => h.evaluate((li) => ({
        offset: Number(li.dataset.offset), who: li.querySelector('.who').textContent, text: li.textContent,
      })));
      const onPage = await shown(fromOfficial.text);
      assert(onPage.who === fromOfficial.name, `the demo page shows the sender as ${onPage.who}`);
      assert(onPage.offset === own.offset, `offset: demo page ${onPage.offset}, centrifuge-js ${own.offset}`);

      const fromPage = `hello from the demo page ${process.pid}`;
      await ada.fill('#text', fromPage);
      await ada.click('#send');
      const shownOnPage = await shown(fromPage);
      await waitFor(official, (text) => window.official.pubs.some((p) => p.data.text === text),
        fromPage, 'centrifuge-js to receive the demo page message');
      const got = await official.evaluate((text) => window.official.pubs.find((p) => p.data.text === text), fromPage);
      assert(JSON.stringify(got.data) === JSON.stringify({ name: 'Ada', text: fromPage }),
        `centrifuge-js got ${JSON.stringify(got.data)}`);
      assert(got.offset === shownOnPage.offset, `offset: centrifuge-js ${got.offset}, demo page ${shownOnPage.offset}`);
      await official.evaluate(() => window.official.client.disconnect());
      await official.close();
    });

    await check('phone size (390x844): no sideways scrolling, Send and the ticker visible', async () => {
      const phone = await openDemo(context, base, 'Pip', { viewport: { width: 390, height: 844 } });
      await tickerFlowing(phone, 1, 'at phone size');
      const layout = await phone.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
      }));
      assert(layout.scrollWidth <= layout.innerWidth,
        `the page is ${layout.scrollWidth} px wide in a ${layout.innerWidth} px window`);
      for (const selector of ['#send', '#ticker-title + table']) {
        assert(await phone.isVisible(selector), `${selector} is not visible`);
        const box = await phone.locator(selector).boundingBox();
        assert(box && box.x >= 0 && box.x + box.width <= layout.innerWidth,
          `${selector} sticks out of the window: ${JSON.stringify(box)}`);
      }
      await phone.screenshot({ path: path.join(artifacts, 'resilience-phone.png'), fullPage: true });
      await phone.close();
    });

    await check('no console errors', async () => {
      assert(errors.length === 0, errors.join('; '));
    });
    console.log(`screenshots in ${artifacts}; ${tolerated.length} expected WebSocket failures logged during outages`);
  } finally {
    await backend.stop().catch((e) => console.log(`FAIL demo resilience: ${e.message}`));
    if (backend.hubErrors.length) {
      checks.failed += 1;
      console.log(`FAIL the hub answered the backend with errors: ${backend.hubErrors.slice(0, 3).join('; ')}`);
    }
    if (relay) relay.close();
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
    if (hub.child.exitCode !== null || hub.child.signalCode !== null) {
      checks.failed += 1;
      console.log(`FAIL the hub exited during the tests (code ${hub.child.exitCode}, signal ${hub.child.signalCode}); log: ${dir}/hub.log`);
    }
    const stopping = hub.exited;
    hub.child.kill('SIGTERM');
    await guard(stopping, TIMEOUT_MS, 'the hub to stop on SIGTERM').catch((e) => {
      checks.failed += 1;
      console.log(`FAIL ${e.message}`);
    });
    if (checks.failed === 0) fs.rmSync(dir, { recursive: true, force: true });
    else console.log(`hub logs kept in ${dir}`);
  }
  checks.finish('demo resilience');
}

main().catch((e) => { console.log(`FAIL demo resilience: ${e.stack || e}`); process.exit(1); });
