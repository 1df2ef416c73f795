#!/usr/bin/env node
// The admin dashboard (GET /admin, web/admin.html) in Debian's Chromium (playwright-core),
// against `duplex serve --demo-ticker` in development mode, whose API key opens it: a
// wrong secret is refused; the charts fill from /admin/stats (the ticker's publications,
// the demo page's connection); the busiest channels list the demo page's channels; the
// inspector shows a channel's history and presence and publishes a test message that the
// demo page shows; both pages fit a phone-sized window. Screenshots go to $ARTIFACTS.
// Usage: HUB_API_KEY=KEY admin_page_test.js http://127.0.0.1:PORT/
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');
const { CHROMIUM, CHROMIUM_ARGS: ARGS, Checks } = require('./support');

const TIMEOUT_MS = 30000;
const PHONE = { width: 390, height: 844 };

const checks = new Checks();
const check = (name, body) => checks.check(name, body);

async function open(context, url, name, errors) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${name}: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  await page.goto(url);
  return page;
}

async function signIn(page, secret) {
  await page.fill('#secret', secret);
  await page.click('#login button');
}

// Whether the page scrolls sideways (it must not on a phone).
const overflows = (page) => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);

async function main() {
  const url = process.argv[2];
  const key = process.env.HUB_API_KEY;
  if (!/^http:\/\//.test(url || '') || !key) {
    console.error('usage: HUB_API_KEY=KEY admin_page_test.js http://127.0.0.1:PORT/');
    process.exit(2);
  }
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`FAIL admin page: no Chromium at ${CHROMIUM} (scripts/setup-deps installs it)`);
    process.exit(1);
  }
  const artifacts = process.env.ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-admin-shots-'));
  fs.mkdirSync(artifacts, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-admin-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1200, height: 900 },
  });
  const errors = [];
  const tag = process.pid;
  const admin = new URL('/admin', url).href;
  try {
    // A demo page in another tab: a connection with subscriptions for the dashboard to show.
    const demo = await open(context, url, 'demo', errors);
    await demo.fill('#name', `Watcher${tag}`);
    await demo.click('#join button');
    await demo.waitForFunction(() => !document.getElementById('send').disabled);
    let dash;

    await check('a wrong secret is refused', async () => {
      dash = await open(context, admin, 'admin', errors);
      await signIn(dash, 'not the key');
      await dash.waitForFunction(() => document.getElementById('status').dataset.state === 'error');
      const status = await dash.textContent('#status');
      if (!/unauthorized/.test(status)) throw new Error(`status says ${JSON.stringify(status)}`);
      if (!(await dash.isVisible('#login')) || await dash.isVisible('#dashboard')) {
        throw new Error('the dashboard shows without the right secret');
      }
    });

    await check('the charts fill from /admin/stats', async () => {
      await signIn(dash, key);
      await dash.waitForFunction(() => document.getElementById('status').dataset.state === 'live');
      // The ticker publishes 8 a second; a few samples in, every chart has points.
      await dash.waitForFunction(() => Number(document.getElementById('chart-publications').dataset.points) >= 3
        && Number(document.getElementById('chart-publications').dataset.latest) > 0
        && Number(document.getElementById('chart-deliveries').dataset.latest) > 0
        && Number(document.getElementById('chart-connections').dataset.latest) >= 1
        && document.getElementById('chart-ack').dataset.latest !== '');
      const drawn = await dash.evaluate(() => [...document.querySelectorAll('#charts polyline.a')]
        .every((line) => line.getAttribute('points').split(' ').length >= 3));
      if (!drawn) throw new Error('a chart has fewer than 3 points');
      const total = Number((await dash.textContent('#total-connections')).replace(/,/g, ''));
      if (!(total >= 1)) throw new Error(`connections total ${total}`);
    });

    await check('the busiest channels list the demo page\'s channels', async () => {
      await dash.waitForSelector('#busiest tr[data-channel="ticker:DPLX"]');
      await dash.waitForSelector('#busiest tr[data-channel="chat:lobby"]');
    });

    await check('the inspector shows history and presence, and publishes', async () => {
      await dash.click('#busiest tr[data-channel="chat:lobby"] button');
      // Presence lists the demo page's client (by its id: anonymous users have no name).
      const client = await demo.evaluate(() => window.demo.hub.client);
      if (!client) throw new Error('the demo page has no client id');
      await dash.waitForFunction((id) => [...document.querySelectorAll('#inspector-presence li')]
        .some((li) => li.textContent.includes(id)), client);
      await dash.fill('#data', JSON.stringify({ name: 'admin', text: `hello from the dashboard ${tag}` }));
      await dash.click('#publish button');
      await dash.waitForFunction(() => document.getElementById('inspector-result').dataset.offset);
      const offset = await dash.evaluate(() => document.getElementById('inspector-result').dataset.offset);
      // The demo page got it, at the offset the dashboard was told.
      await demo.waitForFunction(([text, o]) => [...document.querySelectorAll('#messages li')]
        .some((li) => li.textContent.includes(text) && li.dataset.offset === o), [`hello from the dashboard ${tag}`, offset]);
      await dash.waitForFunction((text) => [...document.querySelectorAll('#inspector-history li')]
        .some((li) => li.textContent.includes(text)), `hello from the dashboard ${tag}`);
    });

    await check('the dashboard screenshot is not blank', async () => {
      const file = path.join(artifacts, 'admin.png');
      await dash.screenshot({ path: file, fullPage: true });
      const size = fs.statSync(file).size;
      if (size < 30000) throw new Error(`${file} is ${size} bytes: blank?`);
      console.log(`screenshot in ${file}`);
    });

    await check('both pages fit a phone-sized window', async () => {
      for (const page of [dash, demo]) {
        await page.setViewportSize(PHONE);
        if (await overflows(page)) throw new Error(`${page.url()} scrolls sideways at ${PHONE.width} px`);
      }
      for (const selector of ['#send', '#ticker', '#board']) {
        await demo.locator(selector).scrollIntoViewIfNeeded();
        if (!(await demo.isVisible(selector))) throw new Error(`${selector} is not visible on a phone`);
      }
      for (const selector of ['#charts', '#busiest-title', '#publish button']) {
        await dash.locator(selector).scrollIntoViewIfNeeded();
        if (!(await dash.isVisible(selector))) throw new Error(`${selector} is not visible on a phone`);
      }
      await dash.screenshot({ path: path.join(artifacts, 'admin-phone.png') });
    });

    await check('signing out forgets the secret', async () => {
      await dash.click('#logout');
      await dash.reload();
      if (!(await dash.isVisible('#login')) || await dash.isVisible('#dashboard')) {
        throw new Error('still signed in after signing out and reloading');
      }
    });

    await check('no console errors', async () => {
      // Chromium logs the one refused sign-in's 401 as an error; that one is expected.
      const refused = errors.filter((e) => /^admin: .*status of 401/.test(e));
      const unexpected = errors.filter((e) => !/^admin: .*status of 401/.test(e));
      if (refused.length > 1 || unexpected.length) throw new Error(errors.join('; '));
    });
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  checks.finish('admin page');
}

main().catch((e) => { console.log(`FAIL admin page: ${e.stack || e}`); process.exit(1); });
