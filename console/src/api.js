// The connection to the broker: MQTT over secure WebSockets to the host
// that served this page, signed in with an administrator's user name and
// password, and the control API's request/response on it (docs/API.md).
import mqtt from 'mqtt';

export const REQUEST_TOPIC = '$CONTROL/certmgr/v1';
export const RESPONSE_TOPIC = '$CONTROL/certmgr/v1/response';
export const EVENTS_TOPIC = '$SYS/broker/certmgr/events';

// createCSR with a new RSA 4096 key and CRL downloads take a while.
const REQUEST_TIMEOUT_MS = 90000;

/** An answer's `error`, exactly as the API gave it. */
export class ApiError extends Error {
  constructor(message, command) {
    super(message);
    this.command = command;
  }
}

function brokerUrl() {
  // Same origin: the page is served by the broker's websockets listener.
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/mqtt`;
}

/** True when this page, and so its MQTT connection, is over TLS. */
export function overTls() {
  return location.protocol === 'https:';
}

function connackText(err) {
  const why = {
    1: 'unacceptable protocol version',
    2: 'client id rejected',
    3: 'server unavailable',
    4: 'bad user name or password',
    5: 'not authorized',
  }[err.code];
  if (why === 'not authorized' || why === 'bad user name or password') {
    return `The broker refused the sign-in (CONNACK ${err.code}: ${why}). Check the user name and password.`;
  }
  if (why) return `The broker refused the connection (CONNACK ${err.code}: ${why}).`;
  return `Cannot connect to ${brokerUrl()}: ${err.message || err}`;
}

export class Api {
  constructor() {
    this.client = null;
    this.pending = new Map();
    this.eventListeners = new Set();
    this.stateListeners = new Set();
    this.user = null;
    this.seq = 0;
  }

  /** Signs in; resolves once the control API's answers are subscribed. */
  signIn(user, password) {
    return new Promise((resolve, reject) => {
      let settled = false;
      const client = mqtt.connect(brokerUrl(), {
        username: user,
        password,
        protocolVersion: 4,
        clean: true,
        // The audit lines and blocks name the client id: it tells who.
        clientId: `console-${user}-${Math.random().toString(16).slice(2, 10)}`,
        reconnectPeriod: 0,
        connectTimeout: 15000,
        keepalive: 30,
      });
      const fail = (text) => {
        if (settled) return;
        settled = true;
        client.end(true);
        reject(new Error(text));
      };
      client.on('error', (err) => fail(connackText(err)));
      client.on('close', () => {
        if (!settled) fail(`The connection to ${brokerUrl()} closed before the broker answered.`);
        else this.lost();
      });
      client.on('message', (topic, payload) => this.onMessage(topic, payload));
      client.once('connect', () => {
        // The control API answers only administrators: a refused
        // subscription (SUBACK 0x80) means this user is not one.
        client.subscribe(RESPONSE_TOPIC, { qos: 0 }, (err, granted) => {
          if (err || !granted || !granted.length || granted[0].qos >= 128) {
            fail(`Signed in as '${user}', but the broker refused the subscription to ${RESPONSE_TOPIC}: `
              + 'this user is not an administrator (plugin_opt_admin_users).');
            return;
          }
          client.subscribe(EVENTS_TOPIC, { qos: 0 }, (err2, granted2) => {
            settled = true;
            this.client = client;
            this.user = user;
            this.eventsRefused = !!err2 || !granted2 || !granted2.length || granted2[0].qos >= 128;
            // From now on a dropped connection is retried.
            client.options.reconnectPeriod = 3000;
            client.on('connect', () => this.emitState('connected'));
            client.on('reconnect', () => this.emitState('reconnecting'));
            client.on('offline', () => this.emitState('offline'));
            this.emitState('connected');
            resolve();
          });
        });
      });
    });
  }

  signOut() {
    if (this.client) this.client.end(true);
    this.client = null;
    this.user = null;
    this.lost();
    this.emitState('signed-out');
  }

  lost() {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('The connection to the broker was lost before the answer came; the command may or may not have run.'));
    }
    this.pending.clear();
  }

  onMessage(topic, payload) {
    let msg;
    try {
      msg = JSON.parse(new TextDecoder().decode(payload));
    } catch (e) {
      return;
    }
    if (topic === EVENTS_TOPIC) {
      for (const f of this.eventListeners) f(msg);
      return;
    }
    if (topic !== RESPONSE_TOPIC || !Array.isArray(msg.responses)) return;
    for (const r of msg.responses) {
      const corr = r.correlationData;
      const p = this.pending.get(corr);
      if (!p) {
        // An envelope error has no correlationData: it answers the oldest request.
        if (r.command === 'Unknown' && this.pending.size) {
          const [key, first] = this.pending.entries().next().value;
          this.pending.delete(key);
          clearTimeout(first.timer);
          first.reject(new ApiError(r.error, r.command));
        }
        continue;
      }
      this.pending.delete(corr);
      clearTimeout(p.timer);
      if (r.error !== undefined) p.reject(new ApiError(r.error, r.command));
      else p.resolve(r.data || {});
    }
  }

  /** Runs one command; resolves to its `data`, rejects with its `error`. */
  call(command, fields) {
    if (!this.client || !this.client.connected) {
      return Promise.reject(new Error('Not connected to the broker.'));
    }
    this.seq += 1;
    const corr = `c${Date.now().toString(36)}-${this.seq}`;
    const body = { command, ...(fields || {}), correlationData: corr };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(corr);
        reject(new Error(`No answer to ${command} within ${REQUEST_TIMEOUT_MS / 1000} s.`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(corr, { resolve, reject, timer });
      this.client.publish(REQUEST_TOPIC, JSON.stringify({ commands: [body] }), { qos: 1 });
    });
  }

  onEvent(f) { this.eventListeners.add(f); }

  onState(f) { this.stateListeners.add(f); }

  emitState(s) {
    for (const f of this.stateListeners) f(s);
  }
}

export const api = new Api();
