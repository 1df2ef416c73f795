#!/usr/bin/env node
// The demo page (GET /, web/index.html with web/duplex-client.js) in Debian's Chromium
// (playwright-core, no bundled browser), against `duplex serve --demo-ticker` in
// development mode: two pages chat, a third joins and sees who is here (by name) and the history, a page
// reloads and sees the history; the ticker updates with no offset gap; a square coloured
// on one page changes on another. Screenshots go to $ARTIFACTS (default: a temp dir)
// and must not be blank.
// Usage: demo_page_test.js http://127.0.0.1:PORT/
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');
const { CHROMIUM, CHROMIUM_ARGS: ARGS, Checks } = require('./support');

const TIMEOUT_MS = 30000;

const checks = new Checks();
const check = (name, body) => checks.check(name, body);

async function openAndJoin(context, url, name, errors) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${name}: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  await page.goto(url);
  await page.fill('#name', name);
  await page.click('#join button');
  await page.waitForFunction(() => document.getElementById('state').dataset.state === 'connected');
  await page.waitForFunction(() => !document.getElementById('send').disabled);
  return page;
}

async function say(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
}

const hasMessage = (page, text) => page.waitForFunction(
  (t) => [...document.querySelectorAll('#messages li')].some((li) => li.textContent.includes(t)), text);

async function main() {
  const url = process.argv[2];
  if (!/^http:\/\//.test(url || '')) {
    console.error('usage: demo_page_test.js http://127.0.0.1:PORT/');
    process.exit(2);
  }
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`FAIL demo page: no Chromium at ${CHROMIUM} (scripts/setup-deps installs it)`);
    process.exit(1);
  }
  const artifacts = process.env.ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-demo-shots-'));
  fs.mkdirSync(artifacts, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-hub-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1100, height: 800 },
  });
  const errors = [];
  const tag = process.pid;
  try {
    let ada; let bob;
    await check('two pages chat', async () => {
      ada = await openAndJoin(context, url, 'Ada', errors);
      await say(ada, `hello from Ada ${tag}`);
      await hasMessage(ada, `hello from Ada ${tag}`);
      bob = await openAndJoin(context, url, 'Bob', errors);
      await hasMessage(bob, `hello from Ada ${tag}`); // history on join
      await say(bob, `hi Ada ${tag}`);
      await hasMessage(ada, `hi Ada ${tag}`);
    });
    await check('a third page sees presence and history', async () => {
      const cy = await openAndJoin(context, url, 'Cy', errors);
      await hasMessage(cy, `hello from Ada ${tag}`);
      await hasMessage(cy, `hi Ada ${tag}`);
      await cy.waitForFunction(() => Number(document.getElementById('people').dataset.count) >= 3);
      // By name: anonymous clients are named by the hello each page publishes.
      await cy.waitForFunction(() => ['Ada', 'Bob', 'Cy'].every((n) => document.getElementById('people').textContent.includes(n)));
      await ada.waitForFunction(() => document.getElementById('people').textContent.includes('Cy'));
      await ada.waitForFunction(() => Number(document.getElementById('people').dataset.count) >= 3);
    });
    await check('a reloaded page sees the history', async () => {
      await bob.reload();
      await bob.click('#join button');
      await bob.waitForFunction(() => !document.getElementById('send').disabled);
      await hasMessage(bob, `hello from Ada ${tag}`);
      await hasMessage(bob, `hi Ada ${tag}`);
    });
    await check('the ticker updates with no gap', async () => {
      await ada.waitForFunction(() => Object.values(window.demo.tickerOffsets).length === 4
        && /^\d+\.\d\d$/.test(document.getElementById('price-DPLX').textContent));
      const first = await ada.evaluate(() => window.demo.tickerOffsets.DPLX);
      await ada.waitForFunction((f) => window.demo.tickerOffsets.DPLX >= f + 3, first);
      const gaps = await ada.evaluate(() => window.demo.tickerGaps);
      if (gaps !== 0) throw new Error(`${gaps} offset gaps in the ticker`);
    });
    await check('the board is shared', async () => {
      await ada.click('#board button:nth-child(5)');
      for (const page of [bob, ada]) {
        await page.waitForFunction(() => document.querySelector('#board button:nth-child(5)').dataset.colour === '1');
      }
    });
    await check('screenshots are not blank', async () => {
      for (const [name, page] of [['demo-ada', ada], ['demo-bob', bob]]) {
        const file = path.join(artifacts, `${name}.png`);
        await page.screenshot({ path: file, fullPage: true });
        const size = fs.statSync(file).size;
        if (size < 20000) throw new Error(`${file} is ${size} bytes: blank?`);
      }
      console.log(`screenshots in ${artifacts}`);
    });
    await check('no console errors', async () => {
      if (errors.length) throw new Error(errors.join('; '));
    });
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  checks.finish('demo page');
}

main().catch((e) => { console.log(`FAIL demo page: ${e.stack || e}`); process.exit(1); });
