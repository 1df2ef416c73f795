#!/usr/bin/env node
// Interop checklist against an ECHO server, using the Node `ws` client.
// Usage: node_client.js ws://127.0.0.1:PORT [--deflate | --deflate-no-context | --no-deflate]
// Modes (permessage-deflate, RFC 7692):
//   --deflate             offer it (perMessageDeflate, threshold 0 so every message is
//                         compressed); every connection must negotiate it.
//   --deflate-no-context  offer it with serverNoContextTakeover + clientNoContextTakeover;
//                         every connection must negotiate it, and the response must
//                         carry server_no_context_takeover.
//   --no-deflate          (default) offer nothing; no connection may negotiate an extension.
// A connection that negotiated otherwise fails the check that opened it. In the deflate
// modes a last check asserts compression was really used: every echo of 1 KiB or more
// arrived compressed, and our messages went out compressed (counted by wrapping ws's
// PerMessageDeflate instance, which ws calls exactly for RSV1 messages).
// Prints one PASS/FAIL line per check (and `#` comment lines) and ends with
// `interop: N passed, M failed` (parsed by scripts/interop and CI); exits 1 if any
// check failed.
'use strict';
const WebSocket = require('ws');

const MAX_SIZE = 32 * 1024 * 1024;
const CHECK_TIMEOUT_MS = 30000; // per check, connect and close included
const SIZES = [0, 125, 126, 65535, 65536, 16 * 1024 * 1024];
const CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
  1013, 1014, 3000, 3999, 4000, 4999];
const MODES = ['--deflate', '--deflate-no-context', '--no-deflate'];
const BIG = 1024; // in the deflate modes, echoes at least this long must arrive compressed
const PMD = 'permessage-deflate';

// Same deterministic payloads as py_client.py: text mixes 1-4 byte UTF-8
// sequences (10 bytes per unit) padded with ASCII to exactly n bytes; binary
// repeats a 251-byte block (prime, so it never lines up with the mask).
const UNIT = 'a\u00e9\u20ac\u{1F600}';
const BLOCK = Buffer.from(Array.from({ length: 251 }, (_, i) => (i * 131 + 17) % 256));
function textOf(n) {
  const s = UNIT.repeat(Math.floor(n / 10)) + 'a'.repeat(n % 10);
  if (Buffer.byteLength(s) !== n) throw new Error('textOf length bug');
  return s;
}
function binaryOf(n) {
  const b = Buffer.alloc(n);
  for (let off = 0; off < n; off += BLOCK.length) BLOCK.copy(b, off, 0, Math.min(BLOCK.length, n - off));
  return b;
}

function perMessageDeflateOption(mode) {
  if (mode === '--deflate') return { threshold: 0 };
  if (mode === '--deflate-no-context') {
    return { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true };
  }
  return false;
}

// Why this connection's handshake does not match the mode, or null. `header` is the
// response's Sec-WebSocket-Extensions (undefined if absent); ws.extensions lists the
// extensions ws enabled.
function negotiationError(mode, ws, header) {
  if (mode === '--no-deflate') {
    return header === undefined && ws.extensions === '' ? null
      : `no extension offered, yet the response has '${header}'`;
  }
  if (ws.extensions !== PMD || !header || !header.includes(PMD)) {
    return `${PMD} not negotiated (ws.extensions '${ws.extensions}', response extensions '${header}')`;
  }
  if (mode === '--deflate-no-context' && !header.includes('server_no_context_takeover')) {
    return `response lacks server_no_context_takeover: '${header}'`;
  }
  return null;
}

// Count compressed messages both ways. ws calls its PerMessageDeflate's decompress()
// for each frame of an RSV1 message, and compress() for each frame it sends with RSV1
// (ws internals of the pinned version; checked to exist).
const stats = { inCompressed: 0, outCompressed: 0 };
function instrument(ws) {
  const pmd = ws._extensions && ws._extensions[PMD];
  if (!pmd || typeof pmd.decompress !== 'function' || typeof pmd.compress !== 'function') {
    throw new Error(`cannot find ws's ${PMD} instance to count compressed messages (ws internals changed?)`);
  }
  const { decompress, compress } = pmd;
  pmd.decompress = (data, fin, cb) => decompress.call(pmd, data, fin, (err, buf) => {
    if (!err && fin) stats.inCompressed++; // before the callback emits the message
    cb(err, buf);
  });
  pmd.compress = (data, fin, cb) => {
    if (fin) stats.outCompressed++;
    return compress.call(pmd, data, fin, cb);
  };
}

// Open a connection whose incoming messages / pongs / close are awaitable; rejects
// if the negotiated extensions do not match the mode.
const negotiated = new Set(); // response Sec-WebSocket-Extensions values seen, quoted
function open(url, mode) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      perMessageDeflate: perMessageDeflateOption(mode), maxPayload: MAX_SIZE, handshakeTimeout: 10000,
    });
    let header;
    ws.once('upgrade', (res) => { header = res.headers['sec-websocket-extensions']; });
    const queue = []; // received {data, isBinary}, or waiters for them
    const waiters = [];
    let closed = null; // {code, reason} once the close handshake is done
    const closeWaiters = [];
    const settle = (item) => (waiters.length ? waiters.shift().resolve(item) : queue.push(item));
    ws.on('message', (data, isBinary) => settle({ data, isBinary }));
    ws.on('error', (err) => { reject(err); while (waiters.length) waiters.shift().reject(err); });
    ws.on('close', (code, reason) => {
      closed = { code, reason: reason.toString() };
      while (waiters.length) waiters.shift().reject(new Error(`connection closed (${code})`));
      while (closeWaiters.length) closeWaiters.shift()(closed);
    });
    ws.on('open', () => {
      negotiated.add(header === undefined ? '(none)' : `'${header}'`);
      let err = negotiationError(mode, ws, header);
      if (!err && mode !== '--no-deflate') {
        try { instrument(ws); } catch (e) { err = e.message; }
      }
      if (err) { ws.terminate(); reject(new Error(err)); return; }
      resolve({
        ws,
        next: () => (queue.length ? Promise.resolve(queue.shift())
          : closed ? Promise.reject(new Error(`connection closed (${closed.code})`))
            : new Promise((res, rej) => waiters.push({ resolve: res, reject: rej }))),
        closedP: () => (closed ? Promise.resolve(closed) : new Promise((res) => closeWaiters.push(res))),
      });
    });
  });
}

function withTimeout(p, ms) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timeout after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

function mismatch(got, wantBuf, wantBinary) {
  if (got.isBinary !== wantBinary) return `got ${got.isBinary ? 'binary' : 'text'}, want ${wantBinary ? 'binary' : 'text'}`;
  if (got.data.length !== wantBuf.length) return `got ${got.data.length} bytes, want ${wantBuf.length}`;
  if (!got.data.equals(wantBuf)) {
    let i = 0;
    while (got.data[i] === wantBuf[i]) i++;
    return `content differs at byte ${i}`;
  }
  return null;
}

async function main() {
  const [url, mode = '--no-deflate', ...extra] = process.argv.slice(2);
  if (!url || !MODES.includes(mode) || extra.length) {
    console.error(`usage: node_client.js ws://HOST:PORT [${MODES.join(' | ')}]`);
    process.exit(2);
  }
  const deflate = mode !== '--no-deflate';
  let passed = 0, failed = 0;
  let c = null; // shared connection for the message checks
  const echoes = []; // [size in bytes, arrived compressed] per completed echo

  const conn = async () => (c ??= await open(url, mode));
  async function check(name, fn) {
    let err;
    try { err = await withTimeout(fn(), CHECK_TIMEOUT_MS); } catch (e) { err = e.message || String(e); }
    if (err) {
      failed++;
      console.log(`FAIL ${name}: ${err}`);
      if (c) { c.ws.terminate(); c = null; } // shared connection may be out of step
    } else {
      passed++;
      console.log(`PASS ${name}`);
    }
  }
  // Send each fragment with fin=false except the last; expect one whole echo.
  async function echo(fragments, binary) {
    const k = await conn();
    fragments.forEach((f, i) => k.ws.send(f, { binary, fin: i === fragments.length - 1 }));
    const want = Buffer.concat(fragments.map((f) => (typeof f === 'string' ? Buffer.from(f) : f)));
    const before = stats.inCompressed;
    const got = await k.next();
    echoes.push([want.length, stats.inCompressed !== before]);
    return mismatch(got, want, binary);
  }

  const handshakeName = {
    '--deflate': `${PMD} negotiated`,
    '--deflate-no-context': `${PMD} negotiated, no context takeover`,
    '--no-deflate': 'no extension negotiated',
  }[mode];
  await check(`handshake: ${handshakeName}`, async () => { await conn(); return null; });

  for (const n of SIZES) {
    const t = textOf(n), b = binaryOf(n);
    await check(`text ${n} B`, () => echo([t], false));
    await check(`binary ${n} B`, () => echo([b], true));
  }
  // Fragmented text split inside the 4-byte emoji, with an empty middle fragment.
  const frag = Buffer.from(textOf(3000));
  await check('fragmented text (4 frames)',
    () => echo([frag.subarray(0, 1000), frag.subarray(1000, 1009), Buffer.alloc(0), frag.subarray(1009)], false));
  await check('fragmented binary (3 frames)', () => echo([binaryOf(70000), Buffer.alloc(0), binaryOf(10)], true));
  await check('ping with payload -> pong', async () => {
    const k = await conn();
    const payload = Buffer.from('duplex-ping \x00\xff', 'latin1');
    const pong = new Promise((res) => k.ws.once('pong', res));
    k.ws.ping(payload);
    const got = await pong;
    return got.equals(payload) ? null : `pong payload ${got.toString('hex')}, want ${payload.toString('hex')}`;
  });
  if (c) { c.ws.close(1000); await withTimeout(c.closedP(), 5000).catch(() => {}); c = null; }

  for (const code of CLOSE_CODES) {
    await check(`close ${code} echoed`, async () => {
      const k = await open(url, mode);
      try {
        k.ws.close(code, `bye ${code}`);
        const got = await k.closedP(); // code from the server's close frame (1006 if none)
        return got.code === code ? null : `server closed with ${got.code} '${got.reason}', want ${code}`;
      } finally { k.ws.terminate(); }
    });
  }
  if (deflate) {
    await check(`compression in use: echoes >= ${BIG} B arrived compressed, sent compressed`, async () => {
      const big = echoes.filter(([n]) => n >= BIG);
      const plain = [...new Set(big.filter(([, z]) => !z).map(([n]) => n))];
      if (!big.length) return `no echo of ${BIG} B or more completed`;
      if (plain.length) return `echoes of [${plain.sort((x, y) => x - y).join(', ')}] B arrived uncompressed`;
      if (!stats.outCompressed) return 'no message went out compressed';
      console.log(`# ${big.length} echoes of >= ${BIG} B arrived compressed; ${stats.outCompressed} messages sent compressed`);
      return null;
    });
  }
  console.log(`# negotiated: ${[...negotiated].sort().join(' | ')}`);
  console.log(`interop: ${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => { console.error(e); console.log('interop: 0 passed, 1 failed'); process.exit(1); });
