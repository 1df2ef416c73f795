#!/usr/bin/env node
// Drive Debian's Chromium (via playwright-core, no bundled browser) through
// browser.html against an ECHO server.
// Usage: browser_test.js URL [MODE] [URL [MODE]]...
//   URL: ws://127.0.0.1:PORT; MODE: --deflate (default) | --deflate-no-context | --no-deflate
// The mode is what that server must negotiate (Chromium always offers permessage-deflate):
// --deflate permessage-deflate; --deflate-no-context that plus server_no_context_takeover;
// --no-deflate no extension. See browser.html. Several targets share one browser
// launch (the launch is most of the run's time); with more than one, each check name
// starts with `N MODE:`, N counting the targets from 1.
// The page is served over http://127.0.0.1 by a tiny static server here, so
// the WebSocket handshake carries a normal http Origin (not file:// / null).
// Prints one PASS/FAIL line per check and ends with `interop: N passed, M failed`.
'use strict';
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = 120000; // whole run; the page bounds each check itself
const MODES = ['--deflate', '--deflate-no-context', '--no-deflate'];

// [{url, mode}] from the command line, or null if it is malformed.
function parseTargets(args) {
  const targets = [];
  for (const a of args) {
    if (MODES.includes(a) && targets.length && !targets.at(-1).explicit) {
      Object.assign(targets.at(-1), { mode: a, explicit: true });
    } else if (/^wss?:\/\//.test(a)) {
      targets.push({ url: a, mode: '--deflate', explicit: false });
    } else return null;
  }
  return targets.length ? targets : null;
}
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function main() {
  const targets = parseTargets(process.argv.slice(2));
  if (!targets) {
    console.error(`usage: browser_test.js ws://HOST:PORT [${MODES.join(' | ')}] [ws://... [MODE]]...`);
    process.exit(2);
  }
  const html = fs.readFileSync(path.join(__dirname, 'browser.html'));
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-chromium-'));
  let context;
  let passed = 0, failed = 0;
  const timer = setTimeout(() => {
    console.log(`FAIL browser run: timeout after ${TOTAL_TIMEOUT_MS} ms`);
    console.log(`interop: ${passed} passed, ${failed + 1} failed`);
    process.exit(1); // playwright kills the browser process on exit
  }, TOTAL_TIMEOUT_MS);
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 60000,
    });
    console.log(`# chromium ${context.browser()?.version() ?? '(version unknown)'}`);
    const page = context.pages()[0] || await context.newPage();
    page.on('pageerror', (e) => console.log(`# page error: ${e.message}`));
    await page.goto(`http://127.0.0.1:${server.address().port}/browser.html`);
    for (const [i, { url, mode }] of targets.entries()) {
      const prefix = targets.length > 1 ? `${i + 1} ${mode}: ` : '';
      const { extensions, results } = await page.evaluate(([u, m]) => window.runChecks(u, m), [url, mode]);
      const shown = extensions === null ? '(not open)' : extensions === '' ? '(none)' : `'${extensions}'`;
      console.log(`# ${prefix}${url} negotiated: ${shown}`);
      for (const r of results) {
        r.ok ? passed++ : failed++;
        console.log(`${r.ok ? 'PASS' : 'FAIL'} ${prefix}${r.name}${r.ok ? '' : `: ${r.detail}`}`);
      }
    }
    console.log(`interop: ${passed} passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  } catch (e) {
    console.log(`FAIL browser run: ${e.message.split('\n')[0]}`);
    console.log(`interop: ${passed} passed, ${failed + 1} failed`);
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
    if (context) await context.close().catch(() => {});
    server.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main();
