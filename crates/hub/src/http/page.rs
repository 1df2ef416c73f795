//! The start page at `/`: connects with the browser's WebSocket and shows it works.

/// A minimal page: connects anonymously, subscribes to `chat:lobby`, publishes, and
/// shows what comes back.
pub const INDEX_HTML: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>duplex hub</title>
<style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
#log{font:14px ui-monospace,monospace;white-space:pre-wrap;background:#f4f4f4;padding:1rem;min-height:8rem}</style>
</head>
<body>
<h1>duplex hub</h1>
<p>Status: <strong id="status">connecting…</strong></p>
<form id="form"><input id="text" value="hello" autocomplete="off"> <button>Publish to chat:lobby</button></form>
<div id="log"></div>
<script>
const log = (line) => { document.getElementById('log').textContent += line + '\n'; };
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/connection/websocket');
let id = 0;
const send = (command) => { command.id = ++id; ws.send(JSON.stringify(command)); return command.id; };
ws.onopen = () => send({connect: {name: 'duplex-start-page'}});
ws.onmessage = (event) => {
  for (const line of event.data.split('\n')) {
    const reply = JSON.parse(line);
    if (!reply.id && !reply.push) { ws.send('{}'); continue; }
    if (reply.error) { log('error ' + reply.error.code + ': ' + reply.error.message); continue; }
    if (reply.connect) {
      document.getElementById('status').textContent = 'connected as ' + reply.connect.client;
      send({subscribe: {channel: 'chat:lobby', recover: false}});
    }
    if (reply.subscribe) log('subscribed to chat:lobby at offset ' + (reply.subscribe.offset || 0));
    if (reply.publish) log('publish acknowledged (stored)');
    if (reply.push && reply.push.pub) log('#' + reply.push.pub.offset + ' ' + JSON.stringify(reply.push.pub.data));
  }
};
ws.onclose = (event) => { document.getElementById('status').textContent = 'closed (' + event.code + ' ' + event.reason + ')'; };
document.getElementById('form').onsubmit = (event) => {
  event.preventDefault();
  send({publish: {channel: 'chat:lobby', data: {text: document.getElementById('text').value}}});
};
</script>
</body>
</html>
"#;
