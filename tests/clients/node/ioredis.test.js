// Smoke tests: the ioredis client against a Redoubt server (node --test).
//
// Starts redoubt-server ($REDOUBT_BIN, or target/debug/redoubt-server at the
// workspace root) on a free loopback port, then drives it through ioredis's
// own API: connection (with its INFO ready check and connectionName), SET/GET,
// pipelines, MGET, INCR, EXPIRE/TTL, scanStream, CLIENT SETNAME and INFO. The
// point is that a real client parses every reply; exact reply bytes are
// checked by the Rust differential tests. The server is stopped at the end.
'use strict';

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

let Redis;
try {
  ({ Redis } = require('ioredis'));
} catch (err) {
  console.error(`ioredis is missing: run \`npm ci\` in ${__dirname} (${err.message})`);
  process.exit(1);
}

const { serversUnderTest, startServer, stopServer } = require('./harness');

const [REDOUBT] = serversUnderTest(null, 'ioredis', ['redoubt-server']);

describe('ioredis against redoubt-server', () => {
  let child;
  let port;
  let redis;
  let workdir;

  before(async () => {
    workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'redoubt-node-'));
    ({ child, port } = await startServer(REDOUBT, workdir));
    redis = new Redis({
      host: '127.0.0.1',
      port,
      connectionName: 'node-smoke',
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    });
    await redis.ping();
  });

  after(async () => {
    if (redis) redis.disconnect();
    await stopServer(child);
    fs.rmSync(workdir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await redis.flushall();
  });

  it('connects, passes the INFO ready check and answers PING', async () => {
    assert.equal(redis.status, 'ready');
    assert.equal(await redis.ping(), 'PONG');
    assert.equal(await redis.echo('hello'), 'hello');
  });

  it('SET and GET, with options', async () => {
    assert.equal(await redis.set('k', 'v1'), 'OK');
    assert.equal(await redis.get('k'), 'v1');
    assert.equal(await redis.set('k', 'v2', 'NX'), null);
    assert.equal(await redis.set('k', 'v2', 'XX', 'GET'), 'v1');
    assert.equal(await redis.set('k', 'v3', 'EX', 100), 'OK');
    const ttl = await redis.ttl('k');
    assert.ok(ttl > 0 && ttl <= 100, `ttl ${ttl}`);
    assert.equal(await redis.get('missing'), null);
    const buf = Buffer.from([0, 255, 13, 10, 1]);
    await redis.set('bin', buf);
    assert.deepEqual(await redis.getBuffer('bin'), buf);
  });

  it('pipeline', async () => {
    const pipe = redis.pipeline();
    for (let i = 0; i < 100; i++) pipe.set(`p:${i}`, i);
    pipe.incr('p:counter');
    pipe.get('p:42');
    pipe.incr('p:1').get('p:1');
    pipe.get('p:missing');
    const results = await pipe.exec();
    assert.equal(results.length, 105);
    for (const [err] of results) assert.equal(err, null);
    assert.deepEqual(
      results.slice(100).map(([, v]) => v),
      [1, '42', 2, '2', null],
    );
  });

  it('pipeline reports a failing command in place', async () => {
    await redis.set('text', 'abc');
    const results = await redis.pipeline().incr('text').get('text').exec();
    assert.match(results[0][0].message, /not an integer/);
    assert.deepEqual(results[1], [null, 'abc']);
  });

  it('MSET and MGET', async () => {
    assert.equal(await redis.mset({ a: '1', b: '2', c: '3' }), 'OK');
    assert.deepEqual(await redis.mget('a', 'b', 'missing', 'c'), ['1', '2', null, '3']);
  });

  it('INCR family', async () => {
    assert.equal(await redis.incr('n'), 1);
    assert.equal(await redis.incrby('n', 41), 42);
    assert.equal(await redis.decr('n'), 41);
    assert.equal(await redis.incrbyfloat('f', '1.5'), '1.5');
    await redis.set('text', 'abc');
    await assert.rejects(redis.incr('text'), /not an integer or out of range/);
  });

  it('EXPIRE and TTL', async () => {
    await redis.set('e', '1');
    assert.equal(await redis.ttl('e'), -1);
    assert.equal(await redis.ttl('missing'), -2);
    assert.equal(await redis.expire('e', 100), 1);
    const ttl = await redis.ttl('e');
    assert.ok(ttl >= 90 && ttl <= 100, `ttl ${ttl}`);
    assert.equal(await redis.pexpire('e', 5000), 1);
    const pttl = await redis.pttl('e');
    assert.ok(pttl > 0 && pttl <= 5000, `pttl ${pttl}`);
    assert.equal(await redis.persist('e'), 1);
    assert.equal(await redis.ttl('e'), -1);
    assert.equal(await redis.expire('missing', 10), 0);
  });

  it('scanStream returns every matching key', async () => {
    const expected = new Set();
    const args = [];
    for (let i = 0; i < 500; i++) {
      expected.add(`scan:${i}`);
      args.push(`scan:${i}`, '1');
    }
    await redis.mset(...args);
    await redis.mset('other:1', '1', 'other:2', '1');
    const seen = new Set();
    await new Promise((resolve, reject) => {
      const stream = redis.scanStream({ match: 'scan:*', count: 50 });
      stream.on('data', (keys) => keys.forEach((k) => seen.add(k)));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    assert.deepEqual([...seen].sort(), [...expected].sort());
  });

  it('CLIENT SETNAME, GETNAME and LIST', async () => {
    assert.equal(await redis.client('GETNAME'), 'node-smoke');
    assert.equal(await redis.client('SETNAME', 'node-renamed'), 'OK');
    assert.equal(await redis.client('GETNAME'), 'node-renamed');
    const id = await redis.client('ID');
    const list = await redis.client('LIST');
    const line = list.split('\n').find((l) => l.startsWith(`id=${id} `));
    assert.ok(line, `own client missing from CLIENT LIST:\n${list}`);
    assert.match(line, / name=node-renamed /);
    assert.match(line, / cmd=client\|list /);
    await redis.client('SETNAME', 'node-smoke');
  });

  it('INFO', async () => {
    const text = await redis.info();
    const fields = Object.fromEntries(
      text
        .split('\r\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
    );
    assert.match(fields.redis_version, /^7\.2\./);
    assert.equal(fields.arch_bits, '64');
    assert.equal(fields.cluster_enabled, '0');
    assert.equal(fields.tcp_port, String(port));
    const server = await redis.info('server');
    assert.ok(server.startsWith('# Server\r\n'));
    assert.ok(!server.includes('used_memory:'));
  });

  it('an unknown command rejects with a ReplyError', async () => {
    await assert.rejects(redis.call('DPING'), (err) => {
      assert.equal(err.name, 'ReplyError');
      assert.match(err.message, /unknown command 'DPING'/);
      return true;
    });
    assert.equal(await redis.ping(), 'PONG');
  });
});
