// What the hub's Node test files share: a bounded wait, starting `duplex serve` and
// reading its port from its log, Chromium's settings, and PASS/FAIL counting for the
// files that print their own results.
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const { spawn } = require('node:child_process');
const { EventEmitter } = require('node:events');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Rejects with "timed out after MS ms waiting for WHAT" unless `promise` settles first. */
function guard(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    timer.unref(); // a guard left over from a race does not keep the process alive
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once `condition()` holds, checking now and after every `event` of `emitter`. */
function until(emitter, event, condition, what, ms) {
  if (condition()) return Promise.resolve();
  let handler;
  const waiting = new Promise((resolve) => {
    handler = () => { if (condition()) resolve(); };
    emitter.on(event, handler);
  });
  return guard(waiting, ms, what).finally(() => emitter.off(event, handler));
}

/**
 * Runs `BIN serve ARGS` (no DUPLEX_* variables from our environment: unknown ones are a
 * startup error), appends its PID to `pidFile` so the calling script can stop it even if
 * this process dies first, logs to `logFile`, and resolves once it logs its listening
 * line: {child, exited (resolves with {code, signal}), port, base}. `hubs` (a Set) holds
 * the running children.
 */
function startHub({ bin, args, pidFile, logFile, hubs, ms }) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DUPLEX_')));
  const child = spawn(bin, ['serve', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (child.pid) fs.appendFileSync(pidFile, `${child.pid}\n`);
  hubs.add(child);
  const log = fs.createWriteStream(logFile, { flags: 'a' });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    hubs.delete(child);
    resolve({ code, signal });
  }));
  let buffered = '';
  const listening = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.stderr.on('data', (chunk) => {
      log.write(chunk);
      buffered += chunk.toString();
      const match = /duplex hub listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(buffered);
      if (match) resolve(Number(match[1]));
    });
    exited.then(({ code, signal }) => reject(new Error(
      `duplex serve exited (code ${code}, signal ${signal}) before listening:\n${buffered.slice(-2000)}`)));
  });
  return guard(listening, ms, `duplex serve to log its listening line (log: ${logFile})`)
    .then((port) => ({ child, exited, port, base: `http://127.0.0.1:${port}` }));
}

/**
 * A TCP relay on 127.0.0.1 in front of a hub, for cutting the network under clients:
 * `cut()` drops every relayed connection (with `{hold: true}` new ones wait until
 * `release()`), `stop()` also stops listening until `restore()` listens again on the
 * same port, `repoint(port)` drops every connection and sends new ones to another hub.
 * `bridged` counts the connections made upstream (`bridgedTo(port)` per hub); each one
 * emits 'bridged'. `url` is the WebSocket endpoint through it, `base` its HTTP origin.
 */
class Relay extends EventEmitter {
  constructor(targetPort) {
    super();
    this.targetPort = targetPort;
    this.sockets = new Set();
    this.held = [];
    this.holding = false;
    this.bridged = 0;
    this.perPort = new Map();
    this.port = 0;
  }

  async listen() {
    this.server = net.createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    this.base = `http://127.0.0.1:${this.port}`;
    this.url = `ws://127.0.0.1:${this.port}/connection/websocket`;
    return this;
  }

  track(socket) {
    socket.on('error', () => {});
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  accept(socket) {
    this.track(socket);
    if (this.holding) this.held.push(socket);
    else this.bridge(socket);
  }

  bridge(client) {
    if (client.destroyed) return;
    const port = this.targetPort;
    const upstream = net.connect(port, '127.0.0.1');
    this.track(upstream);
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('connect', () => {
      this.bridged += 1;
      this.perPort.set(port, (this.perPort.get(port) || 0) + 1);
      client.pipe(upstream);
      upstream.pipe(client);
      this.emit('bridged');
    });
  }

  bridgedTo(port) {
    return this.perPort.get(port) || 0;
  }

  cut({ hold = false } = {}) {
    this.holding = hold;
    for (const socket of this.sockets) socket.destroy();
  }

  release() {
    this.holding = false;
    const held = this.held;
    this.held = [];
    for (const socket of held) this.bridge(socket);
  }

  /** Drops every connection and stops listening; resolves once the port is closed. */
  async stop(ms = 30000) {
    const closed = new Promise((resolve) => this.server.close(resolve));
    this.cut();
    await guard(closed, ms, 'the relay to stop listening');
  }

  restore() {
    return this.listen();
  }

  repoint(port) {
    this.targetPort = port;
    this.cut();
  }

  close() {
    this.holding = false;
    for (const socket of [...this.sockets, ...this.held]) socket.destroy();
    if (this.server && this.server.listening) this.server.close();
  }
}

/** PASS/FAIL lines and their counts, for test files that are plain scripts. */
class Checks {
  constructor() {
    this.passed = 0;
    this.failed = 0;
  }

  async check(name, body) {
    try {
      await body();
      this.passed += 1;
      console.log(`PASS ${name}`);
    } catch (e) {
      this.failed += 1;
      console.log(`FAIL ${name}: ${e.message}`);
    }
  }

  /** Prints `LABEL: N passed, M failed` and exits, non-zero unless all of at least one passed. */
  finish(label) {
    console.log(`${label}: ${this.passed} passed, ${this.failed} failed`);
    process.exit(this.failed === 0 && this.passed > 0 ? 0 : 1);
  }
}

module.exports = { CHROMIUM, CHROMIUM_ARGS, guard, until, startHub, Checks, Relay };
