#!/usr/bin/env node
// The Socket.IO peer of scripts/compare-hub: what the hub does, written the way a
// Socket.IO 4.8 application does it (the `ws` engine, WebSocket transport only, a room
// per channel, acknowledgements through callbacks), so that `duplex bench hub
// --protocol socketio` measures both with one generator.
//
//   subscribe(channel, ack)          joins the room; ack({offset}) with the channel's last
//   publish({channel, data}, ack)    numbers the publication (per-channel offset, in
//                                    memory), emits 'pub' {offset, data} to the room,
//                                    then ack({offset})
//
// Usage: node bench/peers/socketio-hub.js [PORT]   (0 or none: a free port)
// Prints `socketio hub listening on ws://127.0.0.1:PORT/socket.io/` once listening.
'use strict';
const http = require('node:http');
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 0);
const server = http.createServer();
const io = new Server(server, {
  transports: ['websocket'],
  serveClient: false,
  // The generator's publications are small; Socket.IO's default cap is 1 MB.
  maxHttpBufferSize: 1e6,
});
const offsets = new Map();

io.on('connection', (socket) => {
  socket.on('subscribe', (channel, ack) => {
    if (typeof channel !== 'string') return typeof ack === 'function' && ack({ error: 'channel must be a string' });
    socket.join(channel);
    if (typeof ack === 'function') ack({ offset: offsets.get(channel) || 0 });
  });
  socket.on('publish', (message, ack) => {
    const channel = message && message.channel;
    if (typeof channel !== 'string') return typeof ack === 'function' && ack({ error: 'channel must be a string' });
    const offset = (offsets.get(channel) || 0) + 1;
    offsets.set(channel, offset);
    io.to(channel).emit('pub', { offset, data: message.data });
    if (typeof ack === 'function') ack({ offset });
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`socketio hub listening on ws://127.0.0.1:${server.address().port}/socket.io/`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
