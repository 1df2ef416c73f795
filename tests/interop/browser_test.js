#!/usr/bin/env node
// Drive Debian's Chromium (via playwright-core, no bundled browser) through
// browser.html against an ECHO server.
// Usage: browser_test.js ws://127.0.0.1:PORT
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
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function main() {
  const url = process.argv[2];
  if (!url) { console.error('usage: browser_test.js ws://HOST:PORT'); process.exit(2); }
  const html = fs.readFileSync(path.join(__dirname, 'browser.html'));
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-chromium-'));
  let context;
  const timer = setTimeout(() => {
    console.log(`FAIL browser run: timeout after ${TOTAL_TIMEOUT_MS} ms`);
    console.log('interop: 0 passed, 1 failed');
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
    const results = await page.evaluate((u) => window.runChecks(u), url);
    let passed = 0, failed = 0;
    for (const r of results) {
      r.ok ? passed++ : failed++;
      console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.name}${r.ok ? '' : `: ${r.detail}`}`);
    }
    console.log(`interop: ${passed} passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  } catch (e) {
    console.log(`FAIL browser run: ${e.message.split('\n')[0]}`);
    console.log('interop: 0 passed, 1 failed');
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
    if (context) await context.close().catch(() => {});
    server.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main();
