// Postmortem 001 replayed with the real BullMQ: a queue whose completed jobs are
// never removed (BullMQ's default: no removeOnComplete, the flag the postmortem's
// team had missed) grows in its namespace until writes fail. The guardrail clock
// moves 10 minutes per round of jobs (DEBUG GUARD-TICK), so days pass in seconds.
// The forecast alert must reach a webhook receiver while at least 48 hours of the
// same growth remain, and the growth finder must name the queue's completed set
// first. Redoubt only: these are its own features.
'use strict';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

let bullmq;
let IORedis;
try {
  bullmq = require('bullmq');
  IORedis = require('ioredis');
} catch (err) {
  console.error(`bullmq or ioredis is missing: run \`npm ci\` in ${__dirname} (${err.message})`);
  process.exit(1);
}
const { Queue, Worker } = bullmq;

const { serversUnderTest, startServer, stopServer, withDeadline } = require('./harness');

const [REDOUBT] = serversUnderTest('GUARDRAILS_SERVERS', 'guardrails', ['redoubt-server']);
const ROUND_MS = 10 * 60 * 1000;
const JOBS_PER_ROUND = 10;

// A webhook receiver that keeps every JSON body it is sent.
function receiver() {
  const bodies = [];
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      bodies.push(JSON.parse(data));
      res.writeHead(200);
      res.end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, bodies })));
}

// The ids of the open alerts, from INFO alerts.
async function openAlerts(redis) {
  const info = await redis.info('alerts');
  return [...info.matchAll(/^alert\d+:id=([^,]+),/gm)].map((m) => m[1]);
}

// MEMORY PATTERNS as objects (RESP2: flat arrays of field, value).
async function patterns(redis) {
  const reply = await redis.call('MEMORY', 'PATTERNS', 'COUNT', '5');
  return reply.map((flat) => {
    const o = {};
    for (let i = 0; i < flat.length; i += 2) o[flat[i]] = flat[i + 1];
    return o;
  });
}

describe('postmortem 001 with BullMQ: completed jobs are never removed', () => {
  it('warns 48 hours ahead, through the webhook, and names the completed set', async () => {
    const hook = await receiver();
    const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'redoubt-guardrails-'));
    const server = {
      ...REDOUBT,
      args: (port) => [
        ...REDOUBT.args(port),
        '--save', '', '--guard-interval', '0', '--enable-debug-command', 'yes', '--maxmemory', '256mb',
        '--namespace', 'queues match bull:* limit 8mb evict none; cache default',
        '--alert-webhook', `http://127.0.0.1:${hook.server.address().port}/alerts`,
      ],
    };
    const { child, port } = await startServer(server, workdir);
    const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
    const admin = new IORedis(connection);
    const queue = new Queue('emails', { connection });
    let done = 0;
    const worker = new Worker('emails', async (job) => ({ sent: job.data.to }), { connection, concurrency: 8 });
    worker.on('completed', () => (done += 1));
    worker.on('error', () => {}); // refused writes at the very end are expected
    let added = 0;
    let warnedAt = null;
    let refusedAt = null;
    let top = null;
    try {
      for (let round = 0; round < 2000 && refusedAt === null; round++) {
        const jobs = Array.from({ length: JOBS_PER_ROUND }, (_, i) => ({
          name: 'welcome',
          data: { to: `user${added + i}@example.com`, body: 'x'.repeat(300) },
        }));
        try {
          await queue.addBulk(jobs);
        } catch (err) {
          assert.match(err.message, /OOM command not allowed: namespace 'queues' is at its limit/);
          refusedAt = round;
          break;
        }
        added += JOBS_PER_ROUND;
        await withDeadline(
          new Promise((resolve) => {
            const check = () => (done >= added ? resolve() : setTimeout(check, 2));
            check();
          }),
          30_000,
          `${added} jobs to complete`,
        );
        assert.equal(await admin.call('DEBUG', 'GUARD-TICK', String(ROUND_MS)), 'OK');
        if (warnedAt === null && (await openAlerts(admin)).includes('forecast:queues')) {
          warnedAt = round;
          top = await patterns(admin);
        }
      }
      const ns = (await admin.info('namespaces')).split('\n').find((l) => l.startsWith('ns_queues'));
      console.log(`forecast alert at round ${warnedAt}, first refused job at round ${refusedAt}; ${ns}`);
      assert.notEqual(warnedAt, null, 'the forecast alert never opened');
      assert.notEqual(refusedAt, null, 'the namespace never filled');
      const headroomHours = ((refusedAt - warnedAt) * ROUND_MS) / 3600e3;
      console.log(`warned ${headroomHours.toFixed(1)} h before the first refused job (${added} jobs kept)`);
      assert.ok(headroomHours >= 48, `warned only ${headroomHours} h ahead`);
      assert.ok(headroomHours <= 80, `warned ${headroomHours} h ahead: too early to be a forecast`);
      // what grows: the completed set, which lists the job hashes, then the hashes
      assert.equal(top[0].pattern, 'bull:emails:completed', JSON.stringify(top));
      assert.equal(top[0].indexes, 'bull:emails:*', JSON.stringify(top));
      assert.equal(top[0]['ttl-share'], '0');
      assert.equal(top[1].pattern, 'bull:emails:*', JSON.stringify(top));
      assert.ok(top[1]['bytes-per-hour'] > 0 && top[1]['keys-per-hour'] > 0, JSON.stringify(top));
      const forecast = hook.bodies.find((b) => b.event === 'open' && b.alert.id === 'forecast:queues');
      assert.ok(forecast, `the webhook got ${JSON.stringify(hook.bodies.map((b) => b.alert.id))}`);
      assert.match(forecast.alert.message, /namespace 'queues' grows .* and will be full in/);
      assert.equal(forecast.server.address, `127.0.0.1:${port}`);
    } finally {
      await worker.close(true);
      await queue.close();
      admin.disconnect();
      await stopServer(child);
      hook.server.close();
      fs.rmSync(workdir, { recursive: true, force: true });
    }
  });
});
