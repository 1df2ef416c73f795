#!/usr/bin/env node
// Echo server (Node `ws`) for testing duplex's client.
// Usage: node_server.js PORT [--deflate | --deflate-no-context | --no-deflate]
//   (PORT 0 = ephemeral; binds 127.0.0.1 only)
// Modes (permessage-deflate, RFC 7692):
//   --deflate             accept it (threshold 0: every echo is compressed; context
//                         takeover kept unless the client asks otherwise).
//   --deflate-no-context  accept it with serverNoContextTakeover + clientNoContextTakeover.
//   --no-deflate          (default) decline it.
// Echoes every data message with its type; ws answers pings itself (autoPong). Prints
// `listening on ws://127.0.0.1:PORT` once ready, then serves until SIGTERM/SIGINT.
// It counts compressed messages both ways (by wrapping ws's PerMessageDeflate instance,
// which ws calls exactly for RSV1 messages) and, when stopped, prints a server-side
// verdict for scripts/interop as PASS/FAIL lines:
//   deflate modes: every connection negotiated permessage-deflate (no-context mode: with
//     both no_context_takeover parameters), some messages arrived compressed and none of
//     1 KiB or more arrived uncompressed, and every echo went out compressed;
//   --no-deflate: no connection negotiated an extension, nothing was compressed.
'use strict';
const { WebSocketServer } = require('ws');

const MODES = ['--deflate', '--deflate-no-context', '--no-deflate'];
const PMD = 'permessage-deflate';
const BIG = 1024;
const [port, mode = '--no-deflate', ...extra] = process.argv.slice(2);
if (port === undefined || !MODES.includes(mode) || extra.length) {
  console.error(`usage: node_server.js PORT [${MODES.join(' | ')}]`);
  process.exit(2);
}
const perMessageDeflate = {
  '--deflate': { threshold: 0 },
  '--deflate-no-context': { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
  '--no-deflate': false,
}[mode];

const stats = {
  connections: 0, deflateConnections: 0, headers: new Set(), uninstrumented: 0,
  msgsIn: 0, compressedIn: 0, bigPlainIn: 0, msgsOut: 0, compressedOut: 0,
};

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(port),
  maxPayload: 32 * 1024 * 1024,
  perMessageDeflate,
});
wss.on('listening', () => {
  console.log(`listening on ws://127.0.0.1:${wss.address().port}`);
});
// The response's Sec-WebSocket-Extensions, kept on the request for 'connection'.
wss.on('headers', (headers, req) => {
  const h = headers.find((line) => /^sec-websocket-extensions:/i.test(line));
  req.duplexExtensions = h === undefined ? '(none)' : `'${h.replace(/^[^:]*:\s*/, '')}'`;
});
wss.on('connection', (ws, req) => {
  stats.connections++;
  stats.headers.add(req.duplexExtensions);
  // 'connection' comes before any frame is parsed, so no message is missed.
  let compressedIn = 0; // compressed messages of this connection decompressed so far
  const pmd = ws._extensions && ws._extensions[PMD];
  if (pmd) {
    stats.deflateConnections++;
    if (typeof pmd.decompress === 'function' && typeof pmd.compress === 'function') {
      const { decompress, compress } = pmd;
      pmd.decompress = (data, fin, cb) => decompress.call(pmd, data, fin, (err, buf) => {
        if (!err && fin) compressedIn++; // before the callback emits the message
        cb(err, buf);
      });
      pmd.compress = (data, fin, cb) => {
        if (fin) stats.compressedOut++;
        return compress.call(pmd, data, fin, cb);
      };
    } else stats.uninstrumented++;
  } else if (ws.extensions !== '') stats.uninstrumented++;
  let seen = 0;
  ws.on('message', (data, isBinary) => {
    const compressed = compressedIn !== seen;
    seen = compressedIn;
    stats.msgsIn++;
    if (compressed) stats.compressedIn++;
    else if (data.length >= BIG) stats.bigPlainIn++;
    stats.msgsOut++;
    ws.send(data, { binary: isBinary });
  });
  // A protocol error from a peer under test is reported by closing; don't crash.
  ws.on('error', (err) => console.error(`node_server: ${err.message}`));
});

// Server-side checks over everything served: [name, error or null].
function verdict() {
  const s = stats;
  const shown = [...s.headers].sort().join(' | ');
  console.log(`# node_server ${mode}: ${s.connections} connections, negotiated: ${shown}; `
    + `messages in ${s.msgsIn} (${s.compressedIn} compressed), out ${s.msgsOut} (${s.compressedOut} compressed)`);
  if (s.connections === 0) return [['node_server: served connections', 'no connection was served']];
  if (s.uninstrumented) {
    return [['node_server: counting compressed messages', `ws internals not as expected on ${s.uninstrumented} connections`]];
  }
  if (mode === '--no-deflate') {
    return [[`node_server ${mode} (server side): no extension negotiated, nothing compressed`,
      s.deflateConnections === 0 && shown === '(none)' && s.compressedIn === 0 && s.compressedOut === 0
        ? null : 'compression was used']];
  }
  let err = null;
  if (s.deflateConnections !== s.connections) {
    err = `only ${s.deflateConnections} of ${s.connections} connections negotiated it`;
  } else if (mode === '--deflate-no-context'
    && ![...s.headers].every((h) => h.includes('server_no_context_takeover') && h.includes('client_no_context_takeover'))) {
    err = `a response lacks a no_context_takeover parameter: ${shown}`;
  }
  const checks = [[`node_server ${mode} (server side): every connection negotiated ${PMD}`, err]];
  err = null;
  if (s.compressedIn === 0) err = 'no message arrived compressed';
  else if (s.bigPlainIn) err = `${s.bigPlainIn} messages of >= ${BIG} B arrived uncompressed`;
  else if (s.compressedOut !== s.msgsOut) err = `only ${s.compressedOut} of ${s.msgsOut} echoes went out compressed`;
  checks.push([`node_server ${mode} (server side): messages >= ${BIG} B arrived compressed, echoes sent compressed`, err]);
  return checks;
}

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    for (const [name, err] of verdict()) console.log(err ? `FAIL ${name}: ${err}` : `PASS ${name}`);
    process.exit(0);
  });
}
