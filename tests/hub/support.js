// What the hub's Node test files share: a bounded wait, starting `duplex serve` and
// reading its port from its log, Chromium's settings, and PASS/FAIL counting for the
// files that print their own results.
'use strict';
const fs = require('node:fs');
const { spawn } = require('node:child_process');

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

module.exports = { CHROMIUM, CHROMIUM_ARGS, guard, until, startHub, Checks };
