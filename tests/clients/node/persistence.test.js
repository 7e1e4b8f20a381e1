// End-to-end: a BullMQ queue survives `kill -9` of its server with the
// append-only log on (`appendfsync always`). BullMQ moves jobs between its
// lists, sorted sets and hashes with Lua scripts, so this checks that scripts'
// effects are logged whole and replayed: after the server is killed and started
// again on its files, every job's state and return value and the queue's counts
// are what they were, and the queue keeps working. The same test runs against
// redis-server with the same settings, which shows the test itself is right.
//
// PERSISTENCE_SERVERS=redoubt-server (or redis-server) runs against one only.
'use strict';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

let bullmq;
try {
  bullmq = require('bullmq');
} catch (err) {
  console.error(`bullmq is missing: run \`npm ci\` in ${__dirname} (${err.message})`);
  process.exit(1);
}
const { Queue, Worker } = bullmq;

const { serversUnderTest, startServer, stopServer, withDeadline } = require('./harness');

const SERVERS = serversUnderTest('PERSISTENCE_SERVERS', 'persistence');

// The server, logging every write to `dir` before answering it.
function logged(server, dir) {
  return {
    ...server,
    args: (port) => [
      ...server.args(port),
      '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '',
    ],
  };
}

async function kill9(child) {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

// Every job's state, return value, attempts and failure, and the queue's counts.
async function picture(queue, ids) {
  const jobs = {};
  for (const id of ids) {
    const job = await queue.getJob(id);
    assert.ok(job, `job ${id} exists`);
    jobs[id] = [await job.getState(), job.returnvalue, job.attemptsMade, job.failedReason || ''];
  }
  const counts = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized');
  return { jobs, counts };
}

async function runUntil(queue, connection, done) {
  let finished = 0;
  const worker = new Worker(
    queue.name,
    async (job) => {
      if (job.data.fail) throw new Error(`job ${job.data.n} fails`);
      return job.data.n * 2;
    },
    { connection, concurrency: 4 },
  );
  const settled = new Promise((resolve) => {
    const tick = () => {
      finished += 1;
      if (finished === done) resolve();
    };
    worker.on('completed', tick);
    worker.on('failed', tick);
  });
  await withDeadline(settled, 60_000, `${done} jobs to settle`, async () => JSON.stringify(await queue.getJobCounts()));
  await worker.close();
}

for (const server of SERVERS) {
  describe(`BullMQ after kill -9 with appendfsync always (${server.name})`, () => {
    it('keeps every job, its state and result, and keeps working', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `persistence-${server.name}-`));
      const node = logged(server, dir);
      let { child, port } = await startServer(node, dir);
      try {
        let connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
        let queue = new Queue('durable', { connection });
        const ids = [];
        for (let n = 0; n < 60; n++) {
          const opts = n % 10 === 0 ? { priority: 1 + (n % 3) } : {};
          ids.push((await queue.add('work', { n, fail: n % 15 === 7 }, opts)).id);
        }
        await runUntil(queue, connection, 60);
        const waiting = [];
        for (let n = 100; n < 120; n++) waiting.push((await queue.add('work', { n })).id);
        const later = (await queue.add('work', { n: 999 }, { delay: 3_600_000 })).id;
        const all = [...ids, ...waiting, later];
        const before = await picture(queue, all);
        assert.equal(before.counts.completed, 56);
        assert.equal(before.counts.failed, 4);
        assert.equal(before.counts.waiting, 20);
        assert.equal(before.counts.delayed, 1);
        await queue.close();

        await kill9(child); // nothing is flushed at exit
        ({ child, port } = await startServer(node, dir));
        connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
        queue = new Queue('durable', { connection });
        assert.deepEqual(await picture(queue, all), before);

        await runUntil(queue, connection, 20);
        for (const id of waiting) {
          const job = await queue.getJob(id);
          assert.equal(job.returnvalue, job.data.n * 2);
        }
        await queue.close();
      } finally {
        await stopServer(child);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
