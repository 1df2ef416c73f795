#!/usr/bin/env node
// Opens the hub's start page (GET /) in Debian's Chromium (playwright-core, no bundled
// browser) against a running `duplex serve` in development mode, and checks that the
// page connects, subscribes, publishes and shows its own publication come back.
// Usage: start_page_test.js http://127.0.0.1:PORT/
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = 30000;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function main() {
  const url = process.argv[2];
  if (!/^http:\/\//.test(url || '')) {
    console.error('usage: start_page_test.js http://127.0.0.1:PORT/');
    process.exit(2);
  }
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`FAIL start page: no Chromium at ${CHROMIUM} (scripts/setup-deps installs it)`);
    process.exit(1);
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-hub-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: ARGS,
  });
  let ok = false;
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('connected as '));
    await page.waitForFunction(() => document.getElementById('log').textContent.includes('subscribed to chat:lobby'));
    const text = `hello from chromium ${process.pid}`;
    await page.fill('#text', text);
    await page.click('button');
    await page.waitForFunction((t) => {
      const log = document.getElementById('log').textContent;
      return log.includes('publish acknowledged (stored)') && log.includes(JSON.stringify({ text: t }));
    }, text);
    const log = await page.textContent('#log');
    const line = log.split('\n').find((l) => l.includes(JSON.stringify({ text })));
    if (!/^#\d+ /.test(line)) throw new Error(`the publication line has no offset: ${line}`);
    ok = true;
    console.log(`PASS start page: connected, subscribed, published, got back "${line}"`);
  } catch (e) {
    console.log(`FAIL start page: ${e.message}`);
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exit(ok ? 0 : 1);
}

main().catch((e) => { console.log(`FAIL start page: ${e.stack || e}`); process.exit(1); });
