#!/usr/bin/env node
// Echo server (Node `ws`) for testing duplex's client.
// Usage: node_server.js PORT   (0 = ephemeral; binds 127.0.0.1 only)
// Echoes every data message with its type; ws answers pings itself (autoPong).
// permessage-deflate is off (compression is tested later). Prints
// `listening on ws://127.0.0.1:PORT` once ready, then serves until killed.
'use strict';
const { WebSocketServer } = require('ws');

if (process.argv.length !== 3) {
  console.error('usage: node_server.js PORT');
  process.exit(2);
}
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(process.argv[2]),
  maxPayload: 32 * 1024 * 1024,
  perMessageDeflate: false,
});
wss.on('listening', () => {
  console.log(`listening on ws://127.0.0.1:${wss.address().port}`);
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  // A protocol error from a peer under test is reported by closing; don't crash.
  ws.on('error', (err) => console.error(`node_server: ${err.message}`));
});
