// End-to-end tests: pub/sub under churn with two real clients, ioredis and
// node-redis, against Redoubt and, with the very same tests, against a real
// redis-server (node --test).
//
// The redis-server run shows that the tests themselves are right; the Redoubt
// run is the one that matters. Each server is started on a free loopback port
// ($REDOUBT_BIN or target/debug/redoubt-server at the workspace root, and
// `redis-server` from the PATH or $REDIS_SERVER_BIN) and stopped at the end.
//
// Every message is "<publisher>:<sequence>" and every publisher picks its
// channels from a seeded random plan, so each delivery can be checked against
// what was published. What is covered, with exact assertions:
//
//   - Channels and patterns under churn: 4 publishers (ioredis and node-redis,
//     RESP2 and RESP3) each PUBLISH PUBSUB_MESSAGES numbered messages (5,000 by
//     default) to 8 channels in pipelined batches, while 4 churning subscribers
//     (both libraries, both protocols) SUBSCRIBE/UNSUBSCRIBE/PSUBSCRIBE/
//     PUNSUBSCRIBE in rounds (single and multiple names, names never
//     subscribed, the no-argument forms, and ioredis bursts sent without
//     waiting for the confirmations). 4 stable subscribers (channels,
//     overlapping patterns, both; one is a node-redis RESP3 connection that
//     also publishes and runs PUBSUB while subscribed) must get every message
//     once per matching subscription, in per-publisher order. Churners may
//     only ever see messages for what they are subscribed to: an ioredis
//     churner checks each message against the subscriptions the server has
//     confirmed so far on its connection (ioredis records every confirmation
//     in `condition.subscriber` as it parses it, in stream order), a
//     node-redis churner against its own record (node-redis hands a message
//     only to a listener registered by a confirmation). PUBLISH replies must
//     lie between the number of stable receivers and that plus every
//     subscription a churner could hold; at the end, the sum of all PUBLISH
//     replies must equal the number of messages all subscribers received.
//   - PUBSUB CHANNELS [pattern], NUMSUB, NUMPAT, SHARDCHANNELS [pattern] and
//     SHARDNUMSUB, asked through both libraries, equal the subscriptions the
//     clients hold at every quiescent point (between churn rounds, once all
//     confirmations are in), and are empty when a test starts.
//   - Sharded pub/sub under churn: SSUBSCRIBE/SUNSUBSCRIBE churn while 2
//     publishers SPUBLISH; stable shard subscribers get everything, and a
//     SUBSCRIBE/PSUBSCRIBE client on the same names gets only PUBLISH traffic.
//   - Subscribers that disconnect abruptly mid-stream (socket destroyed, reset,
//     or first left unread with messages piling up) while publishing goes on:
//     after each one, NUMSUB/NUMPAT/CHANNELS drop to exactly the survivors'
//     subscriptions, stable subscribers still get every message in order, and
//     PUBLISH then counts only the survivors.
//
// The end of a stream is marked by one "<publisher>:eos" message per publisher
// on a channel every subscriber joins last: as each publisher's messages
// arrive in order, a subscriber that has all the end markers has everything.
// No fixed sleeps are used to synchronise: every wait is on an event or a
// promise with a deadline whose error says what was missing; the only polling
// (bounded, with a deadline) is for the server noticing a closed connection.
//
// PUBSUB_SERVERS=redoubt-server (or redis-server) runs against one server
// only; PUBSUB_SEED replays the random choices of a failed run (the seed is
// printed with every failure).
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

let IORedis;
let createClient;
try {
  ({ Redis: IORedis } = require('ioredis'));
  ({ createClient } = require('redis'));
} catch (err) {
  console.error(`ioredis or redis (node-redis) is missing: run \`npm ci\` in ${__dirname} (${err.message})`);
  process.exit(1);
}

const { serversUnderTest, startServer, stopServer, withDeadline } = require('./harness');

// Messages per publisher in the churn scenario (the others use fewer).
const MESSAGES = Number(process.env.PUBSUB_MESSAGES || 5_000);
const SEED = Number(process.env.PUBSUB_SEED || Math.floor(Math.random() * 2 ** 31));
// Deadline of any single wait.
const WAIT_MS = 30_000;

const SERVERS = serversUnderTest('PUBSUB_SERVERS', 'pub/sub');

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

// `withDeadline`, with the run's seed in the error (to replay it with PUBSUB_SEED).
function deadline(promise, ms, what, diagnose) {
  return withDeadline(promise, ms, `${what} (seed ${SEED})`, diagnose);
}

// A condition that is re-checked whenever `bump()` is called.
class Signal {
  constructor() {
    this.waiters = [];
  }

  bump() {
    this.waiters = this.waiters.filter((w) => {
      if (!w.test()) return true;
      w.resolve();
      return false;
    });
  }

  wait(test, what, diagnose) {
    if (test()) return Promise.resolve();
    const waiter = { test };
    const promise = new Promise((resolve) => {
      waiter.resolve = resolve;
    });
    this.waiters.push(waiter);
    return deadline(promise, WAIT_MS, what, diagnose).finally(() => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
    });
  }
}

// Polls `probe()` until `done(value)`; fails with the last value after WAIT_MS.
// Only for what no client is told about: the server noticing a closed socket.
async function pollUntil(probe, done, what) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what} (seed ${SEED}); last: ${JSON.stringify(value)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// Deterministic random numbers (mulberry32), one stream per purpose.
function rngFor(label) {
  let a = SEED >>> 0;
  for (const ch of label) a = Math.imul(a ^ ch.charCodeAt(0), 0x9e3779b1) >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (list) => list[next.int(list.length)];
  next.sample = (list, n) => {
    const copy = [...list];
    const out = [];
    while (out.length < n && copy.length) out.push(copy.splice(next.int(copy.length), 1)[0]);
    return out;
  };
  return next;
}

// Redis's glob syntax as far as these tests use it: * ? [abc] [a-z] [^a-z].
const globCache = new Map();
function globMatch(pattern, str) {
  if (!globCache.has(pattern)) globCache.set(pattern, globRegExp(pattern));
  return globCache.get(pattern).test(str);
}

function globRegExp(pattern) {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]]/g, '\\$&')}]`;
      i = end;
    } else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

// Why `got` is not `expected` (two lists of sequence numbers), or null.
function seqMismatch(got, expected) {
  if (got.length === expected.length && got.every((v, k) => v === expected[k])) return null;
  let k = 0;
  while (k < got.length && k < expected.length && got[k] === expected[k]) k++;
  const seen = new Set();
  let dups = 0;
  for (const v of got) {
    if (seen.has(v)) dups++;
    seen.add(v);
  }
  const missing = expected.filter((v) => !seen.has(v)).length;
  return (
    `got ${got.length} messages, expected ${expected.length} (${missing} missing, ${dups} duplicated); ` +
    `first difference at position ${k}: got [${got.slice(k, k + 5)}], expected [${expected.slice(k, k + 5)}]`
  );
}

const range = (n, f) => Array.from({ length: n }, (_, i) => f(i));

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

// The three kinds of subscription and what each library calls them.
const KINDS = {
  channel: { io: ['subscribe', 'unsubscribe'], nr: ['subscribe', 'unsubscribe'], set: 'subscribe' },
  pattern: { io: ['psubscribe', 'punsubscribe'], nr: ['pSubscribe', 'pUnsubscribe'], set: 'psubscribe' },
  shard: { io: ['ssubscribe', 'sunsubscribe'], nr: ['sSubscribe', 'sUnsubscribe'], set: 'ssubscribe' },
};
const PUSH_KIND = { message: 'channel', pmessage: 'pattern', smessage: 'shard' };

// Owns the connections of one test: records unexpected 'error' events and
// closes them all at the end, whether the test passed or not.
class Harness {
  constructor(port) {
    this.port = port;
    this.entries = [];
    this.errors = [];
    this.subscribers = [];
  }

  track(label, lib, client) {
    const entry = { label, lib, client, closing: false };
    client.on('error', (err) => {
      if (!entry.closing) this.errors.push(`${label}: ${err && err.message}`);
    });
    this.entries.push(entry);
    return client;
  }

  // An ioredis connection (RESP2 or RESP3) that never reconnects, so a closed
  // socket is not papered over by a reconnect and automatic resubscription.
  async ioredis(label, protocol) {
    const client = new IORedis({
      host: '127.0.0.1',
      port: this.port,
      protocol,
      connectionName: label,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    this.track(label, 'ioredis', client);
    await client.connect();
    return client;
  }

  // A node-redis connection (RESP2 or RESP3) that never reconnects.
  async nodeRedis(label, resp) {
    const client = createClient({
      socket: { host: '127.0.0.1', port: this.port, reconnectStrategy: false },
      RESP: resp,
      name: label,
    });
    this.track(label, 'node-redis', client);
    await client.connect();
    return client;
  }

  connect(label, lib, resp) {
    return lib === 'ioredis' ? this.ioredis(label, resp) : this.nodeRedis(label, resp);
  }

  // Marks a connection as closed on purpose: its errors are expected.
  closing(client) {
    for (const e of this.entries) if (e.client === client) e.closing = true;
  }

  // How many connections this test still has open.
  openCount() {
    return this.entries.filter((e) => !e.closing).length;
  }

  async closeAll() {
    for (const e of this.entries) {
      e.closing = true;
      try {
        if (e.lib === 'ioredis') e.client.disconnect();
        else if (e.client.isOpen) e.client.destroy();
      } catch {
        // already closed
      }
    }
  }

  assertNoErrors() {
    assert.deepEqual(this.errors, [], `unexpected client errors (seed ${SEED})`);
  }
}

// Which channel every publisher sent each message to: message `i` of
// publisher `p` went to channels[idx[p][i]].
class Plan {
  constructor(channels, eosChannel, sharded) {
    this.channels = channels;
    this.eosChannel = eosChannel;
    this.sharded = sharded;
    this.idx = [];
  }

  channelOf(p, i) {
    const list = this.idx[p];
    return list && i < list.length ? this.channels[list[i]] : undefined;
  }

  // The sequence numbers of publisher `p` that a subscription sees.
  expected(p, source) {
    const out = [];
    (this.idx[p] || []).forEach((c, i) => {
      if (sourceMatches(source, this.channels[c])) out.push(i);
    });
    return out;
  }
}

// A source is "c:<channel>", "p:<pattern>" or "s:<shard channel>".
function sourceMatches(source, channel) {
  const name = source.slice(2);
  return source[0] === 'p' ? globMatch(name, channel) : name === channel;
}

// One subscriber connection and everything it received. Each delivery is
// checked as it arrives; problems are collected in `violations` (throwing from
// inside a client's event handler would only break the client).
class Subscriber {
  constructor(h, label, lib, resp, plan, { keepLog = false } = {}) {
    Object.assign(this, { h, label, lib, resp, plan, keepLog });
    h.subscribers.push(this);
    // name -> 'subscribing' | 'subscribed' | 'unsubscribing', per kind
    this.model = { channel: new Map(), pattern: new Map(), shard: new Map() };
    this.violations = [];
    this.violationCount = 0;
    // Messages for a channel/pattern not subscribed to when they arrived:
    // kept apart, and asserted last (see assertOnlySubscribed).
    this.outside = [];
    this.outsideCount = 0;
    this.data = 0;
    this.eos = new Set();
    this.plain = [];
    this.lastBySource = new Map();
    this.lastByPub = new Map();
    this.log = new Map();
    this.signal = new Signal();
    this.patternListeners = new Map();
    this.onChannel = (message, channel) => this.deliver('message', null, channel, message);
    this.onShard = (message, channel) => this.deliver('smessage', null, channel, message);
  }

  async connect() {
    this.client = await this.h.connect(this.label, this.lib, this.resp);
    if (this.lib === 'ioredis') {
      this.client.on('message', (channel, message) => this.deliver('message', null, channel, message));
      this.client.on('pmessage', (pattern, channel, message) => this.deliver('pmessage', pattern, channel, message));
      this.client.on('smessage', (channel, message) => this.deliver('smessage', null, channel, message));
    }
    return this;
  }

  patternListener(pattern) {
    if (!this.patternListeners.has(pattern)) {
      this.patternListeners.set(pattern, (message, channel) => this.deliver('pmessage', pattern, channel, message));
    }
    return this.patternListeners.get(pattern);
  }

  violation(text) {
    this.violationCount++;
    if (this.violations.length < 20) this.violations.push(`${this.label}: ${text}`);
  }

  // The names of `kind` this connection is subscribed to, as far as its own
  // record goes (exact whenever no command is in flight).
  names(kind) {
    return [...this.model[kind].keys()].sort();
  }

  holdsAny() {
    return Object.values(this.model).some((m) => m.size > 0);
  }

  // ioredis's own view: the confirmations parsed so far.
  confirmedByClient(kind) {
    const set = this.client.condition && this.client.condition.subscriber;
    return set ? set.channels(KINDS[kind].set).sort() : [];
  }

  async subscribe(kind, names) {
    const model = this.model[kind];
    for (const n of names) if (!model.has(n)) model.set(n, 'subscribing');
    if (this.lib === 'ioredis') {
      this.checkCount(await this.client[KINDS[kind].io[0]](...names), `${KINDS[kind].io[0]} ${names}`);
    } else if (kind === 'pattern') {
      // One listener per pattern, so a pmessage says which pattern matched.
      await Promise.all(names.map((n) => this.client.pSubscribe(n, this.patternListener(n))));
    } else {
      await this.client[KINDS[kind].nr[0]](names, kind === 'shard' ? this.onShard : this.onChannel);
    }
    for (const n of names) model.set(n, 'subscribed');
    this.checkClientView();
  }

  // `names` null: the form without arguments (everything of that kind).
  async unsubscribe(kind, names) {
    const model = this.model[kind];
    const targets = names || [...model.keys()];
    for (const n of targets) if (model.has(n)) model.set(n, 'unsubscribing');
    if (this.lib === 'ioredis') {
      this.checkCount(await this.client[KINDS[kind].io[1]](...(names || [])), `${KINDS[kind].io[1]} ${names || ''}`);
    } else if (names) await this.client[KINDS[kind].nr[1]](names);
    else await this.client[KINDS[kind].nr[1]]();
    for (const n of targets) model.delete(n);
    this.checkClientView();
  }

  // ioredis only: several (un)subscribe commands sent back to back, without
  // waiting for any confirmation in between.
  async burst(ops) {
    const commands = ops.map(([kind, op, name]) => `${KINDS[kind].io[op === 'sub' ? 0 : 1]} ${name}`);
    const counts = await Promise.all(ops.map(([kind, op, name]) => this.client[KINDS[kind].io[op === 'sub' ? 0 : 1]](name)));
    counts.forEach((count, k) => this.checkCount(count, commands[k]));
    for (const [kind, op, name] of ops) {
      if (op === 'sub') this.model[kind].set(name, 'subscribed');
      else this.model[kind].delete(name);
    }
    this.checkClientView();
  }

  // ioredis resolves an (un)subscribe with the count of its last
  // confirmation. Anything else means a frame that was no confirmation was
  // taken for one: a message arriving where only replies may (RESP2 after
  // the last UNSUBSCRIBE).
  checkCount(count, command) {
    if (typeof count === 'number') return;
    this.outsideCount++;
    if (this.outside.length < 20) {
      this.outside.push(`${this.label}: ${command} resolved with ${JSON.stringify(count)}: a message taken for its reply`);
    }
  }

  // With nothing in flight, ioredis's confirmed set must equal our record.
  checkClientView() {
    if (this.lib !== 'ioredis') return;
    for (const kind of Object.keys(KINDS)) {
      const mine = this.names(kind);
      const theirs = this.confirmedByClient(kind);
      if (mine.join() !== theirs.join()) {
        this.violation(`confirmed ${kind}s [${theirs}] differ from the commands' outcome [${mine}]`);
      }
    }
  }

  // Whether a message of `kind` for `pattern`/`channel` may arrive now.
  allowed(kind, pattern, channel) {
    const name = kind === 'pattern' ? pattern : channel;
    if (this.lib === 'ioredis') return this.confirmedByClient(kind).includes(name);
    return this.model[kind].has(name);
  }

  deliver(push, pattern, channel, payload) {
    const kind = PUSH_KIND[push];
    const where = `${push} ${pattern ? `${pattern} ` : ''}${channel} ${JSON.stringify(payload)}`;
    if (!this.allowed(kind, pattern, channel)) {
      this.outsideCount++;
      if (this.outside.length < 20) {
        const held = this.confirmedOrModel(kind);
        this.outside.push(`${this.label}: ${where} arrived while not subscribed (confirmed ${kind}s: [${held}])`);
      }
    }
    if (kind === 'pattern' && !globMatch(pattern, channel)) this.violation(`${where}: the channel does not match`);
    if (payload.startsWith('plain:')) {
      this.plain.push([push, pattern, channel, payload].join(' '));
      this.signal.bump();
      return;
    }
    const m = /^(\d+):(\d+|eos)$/.exec(payload);
    if (!m) {
      this.violation(`${where}: malformed payload`);
      return;
    }
    if (this.plan.sharded !== (kind === 'shard')) {
      this.violation(`${where}: ${this.plan.sharded ? 'SPUBLISH' : 'PUBLISH'} traffic arrived as a ${push}`);
    }
    const p = Number(m[1]);
    if (m[2] === 'eos') {
      if (channel !== this.plan.eosChannel) this.violation(`${where}: end marker on the wrong channel`);
      if (this.eos.has(p)) this.violation(`${where}: second end marker of publisher ${p}`);
      this.eos.add(p);
      this.signal.bump();
      return;
    }
    const i = Number(m[2]);
    const published = this.plan.channelOf(p, i);
    if (published !== channel) this.violation(`${where}: message ${p}:${i} was published to ${published}`);
    if (this.eos.has(p)) this.violation(`${where}: after publisher ${p}'s end marker`);
    const source = kind === 'pattern' ? `p:${pattern}` : `${kind[0]}:${channel}`;
    const key = `${source}|${p}`;
    const last = this.lastBySource.get(key);
    if (last !== undefined && i <= last) {
      this.violation(`${where}: after ${p}:${last} through the same subscription (duplicate or out of order)`);
    }
    this.lastBySource.set(key, i);
    const lastOfPub = this.lastByPub.get(p);
    if (lastOfPub !== undefined && i < lastOfPub) {
      this.violation(`${where}: after ${p}:${lastOfPub} (publisher order broken across channels)`);
    } else {
      this.lastByPub.set(p, i);
    }
    if (this.keepLog) {
      if (!this.log.has(key)) this.log.set(key, []);
      this.log.get(key).push(i);
    }
    this.data++;
    this.signal.bump();
  }

  confirmedOrModel(kind) {
    return this.lib === 'ioredis' ? this.confirmedByClient(kind) : this.names(kind);
  }

  // Every source (subscription) this subscriber holds, for expectations.
  sources() {
    return [
      ...this.names('channel').map((n) => `c:${n}`),
      ...this.names('pattern').map((n) => `p:${n}`),
      ...this.names('shard').map((n) => `s:${n}`),
    ];
  }

  // How many copies of a message on `channel` this subscriber gets.
  receives(channel, sharded) {
    return this.sources().filter((s) => (s[0] === 's') === sharded && sourceMatches(s, channel)).length;
  }

  status() {
    return `${this.label}: ${this.data} messages, end markers [${[...this.eos].sort()}], ${this.violationCount} violations`;
  }

  assertClean() {
    assert.deepEqual(this.violations, [], `${this.label}: ${this.violationCount} violations (seed ${SEED})`);
  }


  // Stable subscribers: each subscription got exactly the messages published
  // to what it matches, once each, in order.
  assertComplete(publishers) {
    for (const source of this.sources()) {
      if (source.slice(2) === this.plan.eosChannel) continue;
      for (let p = 0; p < publishers; p++) {
        const problem = seqMismatch(this.log.get(`${source}|${p}`) || [], this.plan.expected(p, source));
        assert.equal(problem, null, `${this.label}, subscription ${source}, publisher ${p}: ${problem} (seed ${SEED})`);
      }
    }
  }

  // Closes the connection abruptly: ioredis's socket is destroyed (or reset
  // with an RST), node-redis's client is destroyed.
  kill({ reset = false } = {}) {
    this.h.closing(this.client);
    if (this.lib === 'ioredis') {
      if (reset) this.client.stream.resetAndDestroy();
      else this.client.stream.destroy();
    } else {
      this.client.destroy();
    }
  }
}

// One publishing connection; `id` is its number in the payloads.
class Publisher {
  constructor(id, label, lib, client, sharded) {
    Object.assign(this, { id, label, lib, client, sharded });
    this.sent = 0;
    this.replySum = 0;
    this.violations = [];
  }

  publish(channel, message) {
    if (!this.sharded) return this.client.publish(channel, message);
    return this.lib === 'ioredis' ? this.client.spublish(channel, message) : this.client.sPublish(channel, message);
  }

  // Publishes at least `min` messages (and then more until `until()` is true,
  // at most `max`) in pipelined batches of 1..64. Both libraries queue a
  // command when it is called, so a batch goes out in sequence order.
  // `bounds(channel)` is taken when a message is sent: the range its PUBLISH
  // reply must fall in.
  async run(plan, { min, until = () => true, max = min, bounds, progress }) {
    const rng = rngFor(`publisher ${this.label}`);
    const idx = (plan.idx[this.id] = []);
    while (this.sent < max && (this.sent < min || !until())) {
      const batch = [];
      const n = Math.min(1 + rng.int(64), max - this.sent);
      for (let k = 0; k < n; k++) {
        const i = this.sent++;
        const c = rng.int(plan.channels.length);
        idx.push(c);
        const channel = plan.channels[c];
        const [lo, hi] = bounds(channel);
        batch.push(
          this.publish(channel, `${this.id}:${i}`).then((reply) => {
            this.replySum += reply;
            if (!(reply >= lo && reply <= hi) && this.violations.length < 20) {
              this.violations.push(
                `${this.label}: message ${this.id}:${i} on ${channel} reached ${reply} subscribers, expected ${lo}..${hi}`,
              );
            }
          }),
        );
      }
      await deadline(Promise.all(batch), WAIT_MS, `${this.label}'s batch of ${n} publishes`);
      if (progress) progress.bump();
    }
  }

  async end(plan) {
    return this.publish(plan.eosChannel, `${this.id}:eos`);
  }

  assertClean() {
    assert.deepEqual(this.violations, [], `${this.label}: PUBLISH replies out of range (seed ${SEED})`);
  }
}

// ---------------------------------------------------------------------------
// PUBSUB introspection
// ---------------------------------------------------------------------------

const pairs = (flat) => {
  const out = {};
  for (let i = 0; i < flat.length; i += 2) out[String(flat[i])] = Number(flat[i + 1]);
  return out;
};

// Everything PUBSUB says about `q`'s names, through either library.
async function pubsubState(lib, c, q) {
  if (lib === 'ioredis') {
    return {
      channels: (await c.pubsub('CHANNELS')).map(String).sort(),
      filtered: (await c.pubsub('CHANNELS', q.filter)).map(String).sort(),
      numsub: pairs(await c.pubsub('NUMSUB', ...q.names)),
      numpat: Number(await c.pubsub('NUMPAT')),
      shardChannels: (await c.pubsub('SHARDCHANNELS')).map(String).sort(),
      shardFiltered: (await c.pubsub('SHARDCHANNELS', q.filter)).map(String).sort(),
      shardNumsub: pairs(await c.pubsub('SHARDNUMSUB', ...q.names)),
    };
  }
  return {
    channels: (await c.pubSubChannels()).sort(),
    filtered: (await c.pubSubChannels(q.filter)).sort(),
    numsub: { ...(await c.pubSubNumSub(q.names)) },
    numpat: await c.pubSubNumPat(),
    shardChannels: (await c.pubSubShardChannels()).sort(),
    shardFiltered: (await c.pubSubShardChannels(q.filter)).sort(),
    shardNumsub: { ...(await c.pubSubShardNumSub(q.names)) },
  };
}

// What PUBSUB must say given the subscriptions `subscribers` hold.
function expectedState(subscribers, q) {
  const channels = new Map();
  const shards = new Map();
  const patterns = new Set();
  for (const s of subscribers) {
    for (const n of s.names('channel')) channels.set(n, (channels.get(n) || 0) + 1);
    for (const n of s.names('shard')) shards.set(n, (shards.get(n) || 0) + 1);
    for (const n of s.names('pattern')) patterns.add(n);
  }
  const chanList = [...channels.keys()].sort();
  const shardList = [...shards.keys()].sort();
  return {
    channels: chanList,
    filtered: chanList.filter((n) => globMatch(q.filter, n)),
    numsub: Object.fromEntries(q.names.map((n) => [n, channels.get(n) || 0])),
    numpat: patterns.size,
    shardChannels: shardList,
    shardFiltered: shardList.filter((n) => globMatch(q.filter, n)),
    shardNumsub: Object.fromEntries(q.names.map((n) => [n, shards.get(n) || 0])),
  };
}

// At a quiescent point: every asker (a [lib, client] pair) sees exactly the
// subscriptions the clients hold.
async function assertPubsubState(askers, subscribers, q, where) {
  const expected = expectedState(subscribers, q);
  for (const [lib, client, label] of askers) {
    const actual = await deadline(pubsubState(lib, client, q), WAIT_MS, `PUBSUB through ${label}`);
    assert.deepEqual(actual, expected, `PUBSUB through ${label} ${where} (seed ${SEED})`);
  }
}

// Waits until PUBSUB (asked through `lib`) matches `subscribers`: for when the
// server has to notice closed connections first.
async function awaitPubsubState(lib, client, subscribers, q, where) {
  const expected = expectedState(subscribers, q);
  await pollUntil(
    () => pubsubState(lib, client, q),
    (actual) => JSON.stringify(actual) === JSON.stringify(expected),
    `PUBSUB ${where} to become ${JSON.stringify(expected)}`,
  );
}

// A test starts once the previous test's connections are gone from PUBSUB.
async function awaitEmpty(admin, q) {
  await awaitPubsubState('ioredis', admin, [], q, 'at the start of the test');
}

// ---------------------------------------------------------------------------
// Churn
// ---------------------------------------------------------------------------

// One random (un)subscribe step of a churning subscriber over `pool`
// ({ channels, patterns } or { shards }); returns what it did.
async function churnStep(s, rng, pool) {
  // node-redis over RESP2 reads the replies of an UNSUBSCRIBE sent while the
  // connection holds no subscription as ordinary replies, one per command: so
  // there it unsubscribes one name at a time.
  const most = (n) => (s.lib === 'node-redis' && s.resp === 2 && !s.holdsAny() ? 1 : 1 + rng.int(n));
  if (pool.shards) {
    const absent = pool.shards.filter((n) => !s.model.shard.has(n));
    const r = rng();
    if (r < 0.4 && absent.length) return sub(s, 'shard', rng.sample(absent, 1 + rng.int(2)));
    if (r < 0.75) return unsub(s, 'shard', rng.sample(pool.shards, most(2)));
    if (r < 0.85 && s.model.shard.size) return unsub(s, 'shard', null);
    if (s.lib === 'ioredis') return burst(s, rng, 'shard', pool.shards);
    return absent.length ? sub(s, 'shard', [rng.pick(absent)]) : unsub(s, 'shard', [rng.pick(pool.shards)]);
  }
  const absentCh = pool.channels.filter((n) => !s.model.channel.has(n));
  const absentPat = pool.patterns.filter((n) => !s.model.pattern.has(n));
  const r = rng();
  if (r < 0.25 && absentCh.length) return sub(s, 'channel', rng.sample(absentCh, 1 + rng.int(3)));
  if (r < 0.45) return unsub(s, 'channel', rng.sample(pool.channels, most(3)));
  if (r < 0.6 && absentPat.length) return sub(s, 'pattern', rng.sample(absentPat, 1 + rng.int(2)));
  if (r < 0.75) return unsub(s, 'pattern', rng.sample(pool.patterns, most(2)));
  // The argument-less forms wait for a count of 0, so only when the other
  // kind is empty.
  if (r < 0.85 && s.model.channel.size && !s.model.pattern.size) return unsub(s, 'channel', null);
  if (r < 0.85 && s.model.pattern.size && !s.model.channel.size) return unsub(s, 'pattern', null);
  if (s.lib === 'ioredis') {
    return rng() < 0.5 ? burst(s, rng, 'channel', pool.channels) : burst(s, rng, 'pattern', pool.patterns);
  }
  return absentCh.length ? sub(s, 'channel', [rng.pick(absentCh)]) : unsub(s, 'channel', [rng.pick(pool.channels)]);
}

async function sub(s, kind, names) {
  await s.subscribe(kind, names);
  return `${kind} +${names.length}`;
}

async function unsub(s, kind, names) {
  await s.unsubscribe(kind, names);
  return `${kind} -${names ? names.length : 'all'}`;
}

async function burst(s, rng, kind, pool) {
  const ops = range(3 + rng.int(4), () => [kind, rng() < 0.5 ? 'sub' : 'unsub', rng.pick(pool)]);
  await s.burst(ops);
  return `${kind} burst`;
}

// Churn rounds until publishing is over (and at least `minRounds`), with the
// PUBSUB check after each round, when every churner is idle.
async function churn({ churners, publishing, minRounds, steps, pool, check }) {
  let over = false;
  publishing.then(
    () => (over = true),
    () => (over = true),
  );
  const rngs = churners.map((c) => rngFor(`churn ${c.label}`));
  let rounds = 0;
  let actions = 0;
  while (!over || rounds < minRounds) {
    await deadline(
      Promise.all(
        churners.map(async (c, k) => {
          for (let j = 0; j < steps; j++) {
            await churnStep(c, rngs[k], pool);
            actions++;
          }
        }),
      ),
      WAIT_MS,
      `churn round ${rounds}`,
      () => churners.map((c) => c.status()).join('; '),
    );
    await check(`after churn round ${rounds}`);
    rounds++;
  }
  await publishing; // rethrows a publisher's failure
  return { rounds, actions };
}

// Every subscriber has every publisher's end marker.
function awaitEnd(subscribers, publishers) {
  return Promise.all(
    subscribers.map((s) =>
      s.signal.wait(
        () => s.eos.size === publishers,
        `${s.label} to receive all ${publishers} end markers`,
        () => subscribers.map((x) => x.status()).join('; '),
      ),
    ),
  );
}

// No message arrived for a channel or pattern a connection was not subscribed
// to at that point of its stream: not before the SUBSCRIBE confirmation, not
// after the UNSUBSCRIBE one, and never where only a reply may come (ioredis
// then takes it for a reply: see checkCount, and its "Command queue state
// error ... Last reply: message,..." error).
//
// It is checked first, and also when a scenario fails early, because the other
// failures a stray message causes (a client's command queue out of step,
// node-redis dropping such messages so the sum of the publish replies is off)
// only follow from it. (It caught a real bug: messages published just before
// an UNSUBSCRIBE arrived after its confirmation.)
function assertOnlySubscribed(h, subscribers) {
  const stray = h.errors.filter((e) => /Last reply: [ps]?message,/.test(e));
  const total = subscribers.reduce((n, s) => n + s.outsideCount, 0) + stray.length;
  assert.deepEqual(
    [...subscribers.flatMap((s) => s.outside), ...stray],
    [],
    `${total} messages arrived outside a subscription (seed ${SEED})`,
  );
}

// The checks at the end of a scenario. `counted`: subscribers whose messages
// must add up to the sum of the PUBLISH (SPUBLISH) replies.
function assertOutcome(h, { subscribers, publishers, stable, counted }) {
  assertOnlySubscribed(h, subscribers);
  for (const s of subscribers) s.assertClean();
  for (const p of publishers) p.assertClean();
  for (const s of stable) s.assertComplete(publishers.length);
  h.assertNoErrors();
  if (counted) {
    const replies = publishers.reduce((n, p) => n + p.replySum, 0);
    const received = counted.reduce((n, s) => n + s.data, 0);
    assert.equal(received, replies, `messages received by all subscribers = sum of the publish replies (seed ${SEED})`);
  }
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

async function channelsAndPatterns(t, port) {
  const h = new Harness(port);
  try {
    const CH = range(8, (i) => `feed:${i}`);
    const EOS = 'feed-end';
    const plan = new Plan(CH, EOS, false);
    const POOL = {
      channels: CH,
      patterns: ['feed:*', 'feed:[0-3]', 'feed:[^0-3]', 'f*[13579]', '*:7', 'feed:?', 'nomatch:*'],
    };
    const q = { names: [...CH, EOS, 'never-used'], filter: 'feed:[0-3]' };

    const adminIo = await h.ioredis('admin-io', 2);
    const adminNr = await h.nodeRedis('admin-nr', 2);
    await awaitEmpty(adminIo, q);

    // Stable subscribers: in place before the first message, until the end.
    const stableSpecs = [
      ['stable-io2', 'ioredis', 2, { channel: [...CH, EOS] }],
      ['stable-io3', 'ioredis', 3, { pattern: ['feed:*', 'feed:[0-3]'], channel: [EOS] }],
      ['stable-nr2', 'node-redis', 2, { pattern: ['feed:[0-3]'], channel: [...CH.slice(4), EOS] }],
      ['stable-nr3', 'node-redis', 3, { channel: [...CH, EOS], pattern: ['f*[13579]'] }],
    ];
    const stable = [];
    for (const [label, lib, resp, subs] of stableSpecs) {
      const s = await new Subscriber(h, label, lib, resp, plan, { keepLog: true }).connect();
      for (const [kind, names] of Object.entries(subs)) await s.subscribe(kind, names);
      stable.push(s);
    }
    const churners = [];
    for (const [label, lib, resp] of [
      ['churn-io2', 'ioredis', 2],
      ['churn-io3', 'ioredis', 3],
      ['churn-nr2', 'node-redis', 2],
      ['churn-nr3', 'node-redis', 3],
    ]) {
      churners.push(await new Subscriber(h, label, lib, resp, plan).connect());
    }
    const all = [...stable, ...churners];
    // stable-nr3 is subscribed in RESP3, so it can run PUBSUB too.
    const askers = [
      ['ioredis', adminIo, 'admin-io (RESP2)'],
      ['node-redis', adminNr, 'admin-nr (RESP2)'],
      ['node-redis', stable[3].client, 'stable-nr3 (RESP3, subscribed)'],
    ];
    const check = (where) => assertPubsubState(askers, all, q, where);
    await check('with only the stable subscriptions');

    // stable-nr3 publishes too: its own messages come back as pushes among
    // the replies to its PUBLISH commands.
    const publishers = [
      new Publisher(0, 'pub-io2', 'ioredis', await h.ioredis('pub-io2', 2), false),
      new Publisher(1, 'pub-io3', 'ioredis', await h.ioredis('pub-io3', 3), false),
      new Publisher(2, 'pub-nr2', 'node-redis', await h.nodeRedis('pub-nr2', 2), false),
      new Publisher(3, 'stable-nr3', 'node-redis', stable[3].client, false),
    ];
    const stableCount = (ch) => stable.reduce((n, s) => n + s.receives(ch, false), 0);
    const churnMax = (ch) => churners.length * (1 + POOL.patterns.filter((p) => globMatch(p, ch)).length);
    const bounds = (ch) => [stableCount(ch), stableCount(ch) + churnMax(ch)];

    const started = Date.now();
    const publishing = Promise.all(publishers.map((p) => p.run(plan, { min: MESSAGES, bounds })));
    const { rounds, actions } = await churn({ churners, publishing, minRounds: 3, steps: 8, pool: POOL, check });
    const took = Date.now() - started;
    t.diagnostic(`${publishers.length} x ${MESSAGES} messages, ${rounds} churn rounds (${actions} steps) in ${took} ms`);

    // Everyone joins the end channel; then each publisher marks its end.
    for (const c of churners) await c.subscribe('channel', [EOS]);
    await check('before the end markers');
    for (const p of publishers) {
      assert.equal(await p.end(plan), all.length, `${p.label}'s end marker reached every subscriber (seed ${SEED})`);
    }
    await awaitEnd(all, publishers.length);

    assertOutcome(h, { subscribers: all, publishers, stable, counted: all });
  } catch (err) {
    // A stray message explains most other failures: report it instead.
    assertOnlySubscribed(h, h.subscribers);
    throw err;
  } finally {
    await h.closeAll();
  }
}

async function sharded(t, port) {
  const h = new Harness(port);
  try {
    const SCH = range(4, (i) => `shard:${i}`);
    const EOS = 'shard:end';
    const plan = new Plan(SCH, EOS, true);
    const q = { names: [...SCH, EOS, 'never-used'], filter: 'shard:[01]' };

    const adminIo = await h.ioredis('admin-io', 3);
    const adminNr = await h.nodeRedis('admin-nr', 3);
    await awaitEmpty(adminIo, q);

    const stable = [
      await new Subscriber(h, 'sstable-io2', 'ioredis', 2, plan, { keepLog: true }).connect(),
      await new Subscriber(h, 'sstable-nr3', 'node-redis', 3, plan, { keepLog: true }).connect(),
    ];
    await stable[0].subscribe('shard', [...SCH, EOS]);
    await stable[1].subscribe('shard', [...SCH, EOS]);
    // Subscribed to the same names with SUBSCRIBE and PSUBSCRIBE: must get
    // no SPUBLISH traffic at all.
    const observer = await new Subscriber(h, 'classic-io3', 'ioredis', 3, plan).connect();
    await observer.subscribe('channel', SCH);
    await observer.subscribe('pattern', ['shard:*']);
    const churners = [
      await new Subscriber(h, 'schurn-io3', 'ioredis', 3, plan).connect(),
      await new Subscriber(h, 'schurn-nr2', 'node-redis', 2, plan).connect(),
    ];
    const all = [...stable, observer, ...churners];
    const askers = [
      ['ioredis', adminIo, 'admin-io (RESP3)'],
      ['node-redis', adminNr, 'admin-nr (RESP3)'],
    ];
    const check = (where) => assertPubsubState(askers, all, q, where);
    await check('with only the stable subscriptions');

    const publishers = [
      new Publisher(0, 'spub-io2', 'ioredis', await h.ioredis('spub-io2', 2), true),
      new Publisher(1, 'spub-nr3', 'node-redis', await h.nodeRedis('spub-nr3', 3), true),
    ];
    const count = Math.ceil(MESSAGES / 2);
    const stableCount = (ch) => stable.reduce((n, s) => n + s.receives(ch, true), 0);
    const bounds = (ch) => [stableCount(ch), stableCount(ch) + churners.length];
    const started = Date.now();
    const publishing = Promise.all(publishers.map((p) => p.run(plan, { min: count, bounds })));
    const { rounds, actions } = await churn({
      churners,
      publishing,
      minRounds: 3,
      steps: 8,
      pool: { shards: SCH },
      check,
    });
    const took = Date.now() - started;
    t.diagnostic(`${publishers.length} x ${count} messages, ${rounds} churn rounds (${actions} steps) in ${took} ms`);

    // PUBLISH (not SPUBLISH) on a shard channel's name reaches only the
    // SUBSCRIBE/PSUBSCRIBE observer: once as a message, once as a pmessage.
    assert.equal(await publishers[0].client.publish('shard:0', 'plain:0'), 2, `PUBLISH shard:0 (seed ${SEED})`);
    for (const c of churners) await c.subscribe('shard', [EOS]);
    await check('before the end markers');
    const shardSubscribers = [...stable, ...churners];
    for (const p of publishers) {
      const reached = await p.end(plan);
      assert.equal(reached, shardSubscribers.length, `${p.label}'s end marker reached every shard subscriber (seed ${SEED})`);
    }
    await awaitEnd(shardSubscribers, publishers.length);
    await observer.signal.wait(() => observer.plain.length >= 2, 'the observer to get the PUBLISH on shard:0');

    assert.deepEqual(
      observer.plain.sort(),
      ['message  shard:0 plain:0', 'pmessage shard:* shard:0 plain:0'],
      `what the SUBSCRIBE/PSUBSCRIBE observer received (seed ${SEED})`,
    );
    assert.equal(observer.data + observer.eos.size, 0, 'the observer got no SPUBLISH traffic');
    for (const s of shardSubscribers) assert.deepEqual(s.plain, [], `${s.label} got no PUBLISH traffic`);
    assertOutcome(h, { subscribers: all, publishers, stable, counted: shardSubscribers });
  } catch (err) {
    // A stray message explains most other failures: report it instead.
    assertOnlySubscribed(h, h.subscribers);
    throw err;
  } finally {
    await h.closeAll();
  }
}

async function abruptDisconnects(t, port) {
  const h = new Harness(port);
  try {
    const CH = range(4, (i) => `news:${i}`);
    const EOS = 'news-end';
    const plan = new Plan(CH, EOS, false);
    const q = { names: [...CH, EOS, 'never-used'], filter: 'news:[01]' };

    const admin = await h.ioredis('admin-io', 2);
    await awaitEmpty(admin, q);

    const stable = [
      await new Subscriber(h, 'dstable-io2', 'ioredis', 2, plan, { keepLog: true }).connect(),
      await new Subscriber(h, 'dstable-nr3', 'node-redis', 3, plan, { keepLog: true }).connect(),
    ];
    await stable[0].subscribe('channel', [...CH, EOS]);
    await stable[1].subscribe('pattern', ['news:*']);
    await stable[1].subscribe('channel', [EOS]);

    // Killed one after another, each once it has received `after` messages.
    // `stall`: first stops reading (the server's output for it piles up)
    // while 500 more messages are published, then is closed.
    const doomedSpecs = [
      ['gone-io2', 'ioredis', 2, { channel: CH }, { after: 100 }],
      ['gone-nr3', 'node-redis', 3, { pattern: ['news:*'] }, { after: 150 }],
      [
        'gone-io3',
        'ioredis',
        3,
        { channel: CH.slice(0, 2), pattern: ['news:[23]'] },
        { after: 200, stall: true, reset: true },
      ],
      ['gone-nr2', 'node-redis', 2, { channel: CH, pattern: ['news:*', 'n*'] }, { after: 250 }],
      ['gone-io2b', 'ioredis', 2, { pattern: ['news:?', 'news:*'] }, { after: 300, stall: true }],
      ['gone-nr3b', 'node-redis', 3, { channel: CH.slice(2) }, { after: 150 }],
      ['gone-io3b', 'ioredis', 3, { channel: CH }, { after: 400, reset: true }],
      ['gone-nr2b', 'node-redis', 2, { pattern: ['news:[01]'], channel: [CH[3]] }, { after: 100 }],
    ];
    const doomed = [];
    for (const [label, lib, resp, subs, how] of doomedSpecs) {
      const s = await new Subscriber(h, label, lib, resp, plan).connect();
      for (const [kind, names] of Object.entries(subs)) await s.subscribe(kind, names);
      s.how = how;
      doomed.push(s);
    }
    let alive = [...stable, ...doomed];
    await assertPubsubState([['ioredis', admin, 'admin-io']], alive, q, 'with every subscriber connected');

    const publishers = [
      new Publisher(0, 'dpub-io3', 'ioredis', await h.ioredis('dpub-io3', 3), false),
      new Publisher(1, 'dpub-nr2', 'node-redis', await h.nodeRedis('dpub-nr2', 2), false),
    ];
    // A message's reply counts the stable subscribers and at most the
    // subscriptions of those not yet seen gone (the bound is taken at send).
    const stableCount = (ch) => stable.reduce((n, s) => n + s.receives(ch, false), 0);
    let notGone = [...doomed];
    const bounds = (ch) => [stableCount(ch), stableCount(ch) + notGone.reduce((n, s) => n + s.receives(ch, false), 0)];
    const progress = new Signal();
    const published = () => publishers.reduce((n, p) => n + p.sent, 0);
    let killsDone = false;
    const min = Math.ceil(MESSAGES / 2);
    const started = Date.now();
    const publishing = Promise.all(
      publishers.map((p) => p.run(plan, { min, until: () => killsDone, max: 50 * min, bounds, progress })),
    );
    let failed = false;
    publishing.catch(() => (failed = true));

    for (const d of doomed) {
      if (failed) break;
      await d.signal.wait(() => d.data >= d.how.after, `${d.label} to receive ${d.how.after} messages`, () => d.status());
      if (d.how.stall) {
        d.client.stream.pause();
        const mark = published();
        await progress.wait(() => published() >= mark + 500 || failed, `500 more messages while ${d.label} stalls`);
      }
      d.kill({ reset: d.how.reset });
      alive = alive.filter((s) => s !== d);
      // The server must notice and drop exactly this subscriber's subscriptions.
      await awaitPubsubState('ioredis', admin, alive, q, `after ${d.label} disconnected`);
      notGone = notGone.filter((s) => s !== d);
    }
    killsDone = true;
    await publishing;
    t.diagnostic(`${published()} messages while ${doomed.length} subscribers disconnected, in ${Date.now() - started} ms`);

    // Only the survivors count now, exactly.
    for (const ch of CH) {
      const reached = await publishers[0].client.publish(ch, 'plain:after');
      assert.equal(reached, stableCount(ch), `PUBLISH ${ch} after the disconnects (seed ${SEED})`);
    }
    for (const p of publishers) {
      const reached = await p.end(plan);
      assert.equal(reached, stable.length, `${p.label}'s end marker reached every stable subscriber (seed ${SEED})`);
    }
    await awaitEnd(stable, publishers.length);
    for (const s of stable) {
      const copies = CH.reduce((n, ch) => n + s.receives(ch, false), 0);
      assert.equal(s.plain.length, copies, `${s.label} got the PUBLISH after the disconnects`);
    }
    // And the server has let go of the closed connections.
    await pollUntil(
      async () => Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))[1]),
      (n) => n === h.openCount(),
      `connected_clients to equal the ${h.openCount()} open connections`,
    );
    assertOutcome(h, { subscribers: [...stable, ...doomed], publishers, stable });
  } catch (err) {
    // A stray message explains most other failures: report it instead.
    assertOnlySubscribed(h, h.subscribers);
    throw err;
  } finally {
    await h.closeAll();
  }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

for (const server of SERVERS) {
  describe(`pub/sub under churn against ${server.name}`, () => {
    let child;
    let port;
    let workdir;

    before(async () => {
      workdir = fs.mkdtempSync(path.join(os.tmpdir(), `${server.name}-pubsub-`));
      ({ child, port } = await startServer(server, workdir));
    });

    after(async () => {
      await stopServer(child);
      fs.rmSync(workdir, { recursive: true, force: true });
    });

    const title = 'channels and patterns: stable subscribers get everything, churners only what they subscribed to';
    it(title, { timeout: 120_000 }, async (t) => {
      t.diagnostic(`seed ${SEED}`);
      await channelsAndPatterns(t, port);
    });

    it('sharded channels: SSUBSCRIBE churn during SPUBLISH, kept apart from PUBLISH', { timeout: 120_000 }, async (t) => {
      t.diagnostic(`seed ${SEED}`);
      await sharded(t, port);
    });

    it('subscribers disconnecting abruptly mid-stream', { timeout: 120_000 }, async (t) => {
      t.diagnostic(`seed ${SEED}`);
      await abruptDisconnects(t, port);
    });
  });
}
