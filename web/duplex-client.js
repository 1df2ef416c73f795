// duplex-client.js: a small browser client for the duplex hub, an ES module with no
// dependencies. It speaks the hub's protocol (the Centrifugo client protocol v2, JSON:
// one command per line, replies matched by id, pushes without one), so it talks to any
// server that does.
//
//   import { Hub } from '/duplex-client.js';
//   const hub = new Hub('ws://127.0.0.1:8080/connection/websocket', { name: 'demo' });
//   const room = hub.subscribe('chat:lobby', { joinLeave: true });
//   room.addEventListener('publication', (e) => show(e.detail.data));
//   hub.connect();
//   await room.publish({ text: 'hi' }); // resolves once the hub has stored it
//
// What it does for you:
// - reconnects after any loss, waiting with exponential backoff and full jitter, so a
//   restarted hub is not met by every client at the same instant;
// - resubscribes each channel from the last offset it delivered, so nothing is missed
//   or delivered twice; when the hub cannot recover that far it says so with a
//   `missed` event instead of pretending;
// - answers the hub's pings, and treats a silent connection as lost;
// - publish() resolves when the hub acknowledges (after storing), rejects on an error.

/** Connection states, in the `state` event's detail and `hub.state`. */
export const State = Object.freeze({
  DISCONNECTED: 'disconnected',
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
});

/** An error the hub answered a command with. */
export class HubError extends Error {
  constructor(code, message, temporary) {
    super(`${code} ${message}`);
    this.code = code;
    this.temporary = Boolean(temporary);
  }
}

const MIN_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 10000;

/** A connection to the hub; events: `state`, `error`. */
export class Hub extends EventTarget {
  /**
   * @param {string} url the hub's WebSocket endpoint (…/connection/websocket)
   * @param {{token?: string, name?: string, data?: any}} options
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = options;
    this.state = State.DISCONNECTED;
    this.client = null; // the hub's id for this connection, once connected
    this.subscriptions = new Map(); // channel -> Subscription
    this._ws = null;
    this._nextId = 1;
    this._pending = new Map(); // command id -> {resolve, reject}
    this._attempt = 0;
    this._wanted = false; // connect() called and not disconnect()
    this._retryTimer = null;
    this._pingTimer = null;
  }

  /** Connects, and keeps reconnecting after losses until disconnect(). */
  connect() {
    this._wanted = true;
    if (this.state === State.DISCONNECTED) this._open();
  }

  /** Closes the connection for good. */
  disconnect() {
    this._wanted = false;
    clearTimeout(this._retryTimer);
    if (this._ws) this._ws.close(1000);
    this._setState(State.DISCONNECTED, { reason: 'disconnect()' });
  }

  /** A subscription to `channel` (made now if connected, else on connect). */
  subscribe(channel, options = {}) {
    let sub = this.subscriptions.get(channel);
    if (!sub) {
      sub = new Subscription(this, channel, options);
      this.subscriptions.set(channel, sub);
      if (this.state === State.CONNECTED) sub._subscribe();
    }
    return sub;
  }

  /** Sends a command; resolves with its reply's result, rejects with a HubError. */
  _call(method, params) {
    return new Promise((resolve, reject) => {
      if (!this._ws || this._ws.readyState !== WebSocket.OPEN) {
        reject(new HubError(0, 'not connected', true));
        return;
      }
      const id = this._nextId++;
      this._pending.set(id, { resolve, reject, method });
      this._ws.send(JSON.stringify({ id, [method]: params }));
    });
  }

  _setState(state, detail = {}) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, ...detail } }));
  }

  _open() {
    this._setState(State.CONNECTING);
    const ws = new WebSocket(this.url);
    this._ws = ws;
    ws.onopen = () => {
      const params = { name: this.options.name || 'duplex-client.js' };
      if (this.options.token) params.token = this.options.token;
      if (this.options.data !== undefined) params.data = this.options.data;
      this._call('connect', params).then((result) => {
        this._attempt = 0;
        this.client = result.client;
        // The hub pings every `ping` seconds; silence for that and a margin means the
        // connection is gone even if the browser has not noticed.
        this._pingInterval = (result.ping || 25) * 1000;
        this._armPingTimer();
        this._setState(State.CONNECTED, { client: result.client });
        for (const sub of this.subscriptions.values()) sub._subscribe();
      }, (error) => {
        this.dispatchEvent(new CustomEvent('error', { detail: error }));
        ws.close(); // reconnects, unless the error says not to (below)
        if (error.code === 101 || error.code === 103) this._wanted = false;
      });
    };
    ws.onmessage = (event) => this._receive(event.data);
    ws.onclose = (event) => this._closed(ws, event.code, event.reason);
  }

  _armPingTimer() {
    clearTimeout(this._pingTimer);
    this._pingTimer = setTimeout(() => this._ws && this._ws.close(4000, 'no ping'),
      this._pingInterval + 10000);
  }

  _receive(text) {
    this._armPingTimer();
    for (const line of text.split('\n')) {
      if (!line) continue;
      const message = JSON.parse(line);
      if (message.id) {
        const pending = this._pending.get(message.id);
        if (!pending) continue;
        this._pending.delete(message.id);
        if (message.error) {
          pending.reject(new HubError(message.error.code, message.error.message, message.error.temporary));
        } else {
          pending.resolve(message[pending.method] || {});
        }
      } else if (message.push) {
        this._push(message.push);
      } else {
        this._ws.send('{}'); // the hub's ping: an empty object, answered in kind
      }
    }
  }

  _push(push) {
    if (push.disconnect) {
      // 3500-3999 and 4500-4999 ask the client not to come back.
      if (!push.disconnect.reconnect) this._wanted = false;
      return;
    }
    const sub = this.subscriptions.get(push.channel);
    if (!sub) return;
    if (push.pub) sub._publication(push.pub);
    else if (push.join) sub.dispatchEvent(new CustomEvent('join', { detail: push.join.info }));
    else if (push.leave) sub.dispatchEvent(new CustomEvent('leave', { detail: push.leave.info }));
  }

  _closed(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    clearTimeout(this._pingTimer);
    for (const pending of this._pending.values()) pending.reject(new HubError(0, 'connection lost', true));
    this._pending.clear();
    for (const sub of this.subscriptions.values()) sub._connectionLost();
    // A close code of 3500-3999 or 4500-4999 means: do not reconnect.
    if ((code >= 3500 && code < 4000) || code >= 4500) this._wanted = false;
    if (!this._wanted) {
      this._setState(State.DISCONNECTED, { code, reason });
      return;
    }
    const ceiling = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** this._attempt);
    const delay = ceiling / 2 + Math.random() * ceiling / 2;
    this._attempt += 1;
    this._setState(State.CONNECTING, { code, reason, retryIn: delay });
    this.dispatchEvent(new CustomEvent('reconnecting', { detail: { code, reason, delay } }));
    this._retryTimer = setTimeout(() => this._open(), delay);
  }
}

/**
 * One channel. Events: `publication` ({data, offset, info}), `join`, `leave`,
 * `subscribed` ({recovered, publications}), `missed` (the hub could not recover what
 * was published while disconnected: reload the state another way).
 */
export class Subscription extends EventTarget {
  constructor(hub, channel, options) {
    super();
    this.hub = hub;
    this.channel = channel;
    this.options = options;
    this.position = null; // {offset, epoch} of the last publication delivered
    this.subscribed = false;
  }

  /**
   * Publishes `data`; resolves once the hub has stored it. With `idempotencyKey`, a
   * retry after a lost reply is acknowledged without being stored twice.
   */
  publish(data, { idempotencyKey } = {}) {
    const params = { channel: this.channel, data };
    if (idempotencyKey) params.idempotency_key = idempotencyKey;
    return this.hub._call('publish', params);
  }

  /** The channel's history: {publications, offset, epoch}. */
  history(options = {}) {
    return this.hub._call('history', { channel: this.channel, ...options });
  }

  /** Who is subscribed: {clientId: {user, client, conn_info}}. */
  async presence() {
    const result = await this.hub._call('presence', { channel: this.channel });
    return result.presence || {};
  }

  _subscribe() {
    const params = { channel: this.channel };
    if (this.options.joinLeave) params.join_leave = true;
    if (this.position) {
      params.recover = true;
      params.offset = this.position.offset;
      params.epoch = this.position.epoch;
    }
    this.hub._call('subscribe', params).then((result) => {
      const recovering = Boolean(this.position);
      const publications = result.publications || [];
      for (const pub of publications) this._publication(pub, result.epoch);
      this.position = { offset: result.offset || 0, epoch: result.epoch };
      this.subscribed = true;
      const recovered = recovering && Boolean(result.recovered);
      this.dispatchEvent(new CustomEvent('subscribed', { detail: { recovering, recovered, count: publications.length } }));
      if (recovering && !result.recovered) {
        this.dispatchEvent(new CustomEvent('missed', { detail: { position: this.position } }));
      }
    }, (error) => this.dispatchEvent(new CustomEvent('error', { detail: error })));
  }

  _publication(pub, epoch) {
    const offset = pub.offset || 0;
    if (this.position && offset && offset <= this.position.offset) return; // seen
    if (this.position && offset) this.position.offset = offset;
    else if (epoch !== undefined && offset) this.position = { offset, epoch };
    this.dispatchEvent(new CustomEvent('publication', { detail: { data: pub.data, offset, info: pub.info } }));
  }

  _connectionLost() {
    this.subscribed = false;
  }
}
