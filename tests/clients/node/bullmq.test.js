// End-to-end tests: the BullMQ job queue against Redoubt and, with the very
// same tests, against a real redis-server (node --test).
//
// The redis-server run shows that the tests themselves are right; the Redoubt
// run is the one that matters. Each server is started on a free loopback port
// ($REDOUBT_BIN or target/debug/redoubt-server at the workspace root, and
// `redis-server` from the PATH or $REDIS_SERVER_BIN) and stopped at the end.
//
// What is covered, with exact assertions:
//   - a queue with several Worker instances (each with concurrency) processing
//     BULLMQ_JOBS jobs (10,000 by default): plain jobs, prioritized jobs,
//     delayed jobs, jobs that fail their first attempt and are retried (with
//     exponential backoff, and immediately), jobs that fail every attempt;
//     getJobCounts, the completed and failed sets, every job's return value,
//     attemptsMade/attemptsStarted, failedReason, how often the processor ran
//     each job, and that a QueueEvents listener saw exactly one 'completed'
//     event per completed job and one 'failed' per failed job; the sets are
//     read page by page, then once whole (getCompleted(0, -1), one script
//     reply with every job);
//   - priorities with one worker at concurrency 1 (the order is deterministic:
//     jobs without a priority first, then by priority, FIFO within one);
//   - flows (FlowProducer): parents wait in waiting-children, run only after
//     all their children completed (one child of some flows needs a retry),
//     and see every child's return value;
//   - a rate limiter shared by two workers on one queue.
//
// No fixed sleeps are used to synchronise: every wait is on an event or a
// promise, with a deadline that fails the test with the queue's job counts.
//
// BULLMQ_SERVERS=redoubt-server (or redis-server) runs against one server only.
'use strict';

const { describe, it, before, after } = require('node:test');
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
const { Queue, Worker, QueueEvents, QueueEventsProducer, FlowProducer } = bullmq;

const { serversUnderTest, startServer, stopServer, withDeadline } = require('./harness');

// Jobs in the main scenario. 10,000 takes well under two minutes per server on
// a two-core machine with a debug build of redoubt-server.
const JOBS = Number(process.env.BULLMQ_JOBS || 10_000);

const SERVERS = serversUnderTest('BULLMQ_SERVERS', 'BullMQ');

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------


// A counter whose `reached` promise resolves when it gets to `target`.
function counter(target) {
  let resolve;
  const c = {
    value: 0,
    target,
    reached: new Promise((r) => {
      resolve = r;
    }),
    add(n = 1) {
      c.value += n;
      if (c.value >= c.target) resolve(c.value);
    },
  };
  if (target <= 0) resolve(0);
  return c;
}

const ALL_STATES = ['active', 'completed', 'delayed', 'failed', 'prioritized', 'waiting', 'waiting-children'];
function counts(overrides) {
  return Object.fromEntries(ALL_STATES.map((s) => [s, overrides[s] || 0]));
}

// Owns every BullMQ object of one test: records their 'error' events and
// closes them all at the end, whether the test passed or not.
class Harness {
  constructor(port) {
    this.connection = {
      host: '127.0.0.1',
      port,
      // Give up after a few attempts rather than reconnecting forever, so a
      // dead server cannot keep the test process alive.
      retryStrategy: (times) => (times > 10 ? null : 100 * times),
    };
    this.objects = [];
    this.errors = [];
  }

  track(obj, label) {
    obj.on('error', (err) => this.errors.push(`${label}: ${err && err.message}`));
    this.objects.push({ obj, label });
    return obj;
  }

  queue(name, opts = {}) {
    return this.track(new Queue(name, { connection: this.connection, ...opts }), `Queue ${name}`);
  }

  worker(name, processor, opts = {}) {
    const label = `Worker ${name}#${this.objects.length}`;
    return this.track(new Worker(name, processor, { connection: this.connection, ...opts }), label);
  }

  // Starts at the beginning of the (fresh) event stream, so no event is missed
  // however late its first XREAD is sent.
  queueEvents(name) {
    return this.track(
      new QueueEvents(name, { connection: this.connection, lastEventId: '0-0', blockingTimeout: 5000 }),
      `QueueEvents ${name}`,
    );
  }

  eventsProducer(name) {
    return this.track(new QueueEventsProducer(name, { connection: this.connection }), `QueueEventsProducer ${name}`);
  }

  flowProducer() {
    return this.track(new FlowProducer({ connection: this.connection }), 'FlowProducer');
  }

  // Workers first (graceful, or forced if that takes too long), then the rest.
  async closeAll() {
    const ordered = [
      ...this.objects.filter(({ obj }) => obj instanceof Worker),
      ...this.objects.filter(({ obj }) => !(obj instanceof Worker)),
    ];
    this.objects = [];
    const problems = [];
    await Promise.all(
      ordered.map(async ({ obj, label }) => {
        try {
          await withDeadline(obj.close(), 15_000, `${label} to close`);
        } catch (err) {
          problems.push(`${label}: ${err.message}`);
          if (obj instanceof Worker) {
            await withDeadline(obj.close(true), 5_000, `${label} to force-close`).catch(() => {});
          }
        }
      }),
    );
    return problems;
  }

  assertNoErrors() {
    assert.deepEqual(this.errors, [], 'BullMQ objects emitted errors');
  }
}

// Waits until `queueEvents` has read everything published to `queueName`'s
// event stream so far: publishes a sentinel event and waits for it.
async function drainEvents(harness, queueName, queueEvents) {
  const token = `${Date.now()}-${Math.random()}`;
  const seen = new Promise((resolve) => {
    const onSentinel = (args) => {
      if (args.token === token) {
        queueEvents.off('test-sentinel', onSentinel);
        resolve();
      }
    };
    queueEvents.on('test-sentinel', onSentinel);
  });
  const producer = harness.eventsProducer(queueName);
  await producer.publishEvent({ eventName: 'test-sentinel', token }, 10_000_000);
  await withDeadline(seen, 30_000, `QueueEvents ${queueName} to read the sentinel event`);
}

// Records QueueEvents 'completed' and 'failed' events of one queue.
function recordEvents(queueEvents) {
  const rec = { completed: new Map(), failed: new Map(), duplicates: [], retriesExhausted: 0 };
  queueEvents.on('completed', ({ jobId, returnvalue }) => {
    if (rec.completed.has(jobId)) rec.duplicates.push(`completed ${jobId}`);
    rec.completed.set(jobId, returnvalue);
  });
  queueEvents.on('failed', ({ jobId, failedReason }) => {
    if (rec.failed.has(jobId)) rec.duplicates.push(`failed ${jobId}`);
    rec.failed.set(jobId, failedReason);
  });
  queueEvents.on('retries-exhausted', () => {
    rec.retriesExhausted += 1;
  });
  return rec;
}

// Every job in `state`, read 1,000 at a time.
async function fetchJobs(queue, state) {
  const PAGE = 1000;
  const jobs = [];
  for (let start = 0; ; start += PAGE) {
    const page = await queue.getJobs([state], start, start + PAGE - 1, true);
    jobs.push(...page);
    if (page.length < PAGE) return jobs;
  }
}

async function describeCounts(...queues) {
  const parts = [];
  for (const q of queues) parts.push(`${q.name}: ${JSON.stringify(await q.getJobCounts())}`);
  return parts.join('; ');
}

// ---------------------------------------------------------------------------
// The main scenario's jobs
// ---------------------------------------------------------------------------

// Every job's kind follows from its index, so the expected outcome of each job
// is known up front.
function kindOf(i) {
  const r = i % 100;
  if (r < 3) return 'flaky-backoff'; // fails attempt 1, retried after an exponential backoff
  if (r < 5) return 'flaky-now'; // fails attempt 1, retried at once (no backoff)
  if (r < 7) return 'doomed'; // fails both of its attempts
  if (r < 12) return 'delayed';
  if (r < 22) return 'prioritized';
  return 'plain';
}

function optsOf(i) {
  switch (kindOf(i)) {
    case 'flaky-backoff':
      return { attempts: 3, backoff: { type: 'exponential', delay: 20 } };
    case 'flaky-now':
      return { attempts: 2 };
    case 'doomed':
      return { attempts: 2, backoff: { type: 'fixed', delay: 10 } };
    case 'delayed':
      return { delay: 100 + (i % 4) * 100 };
    case 'prioritized':
      return { priority: 1 + (i % 7) };
    default:
      return {};
  }
}

const isFlaky = (kind) => kind === 'flaky-backoff' || kind === 'flaky-now';

// ---------------------------------------------------------------------------
// The tests, once per server
// ---------------------------------------------------------------------------

for (const server of SERVERS) {
  describe(`BullMQ against ${server.name}`, () => {
    let child;
    let port;
    let workdir;
    let harness;

    before(async () => {
      workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'redoubt-bullmq-'));
      ({ child, port } = await startServer(server, workdir));
    });

    after(async () => {
      try {
        if (harness) await harness.closeAll();
      } finally {
        await stopServer(child);
        fs.rmSync(workdir, { recursive: true, force: true });
      }
    });

    // Runs `body` with a fresh harness, closing every object it made even if
    // the body throws; a failure to close fails the test.
    async function withHarness(body) {
      harness = new Harness(port);
      let problems;
      try {
        await body(harness);
      } finally {
        problems = await harness.closeAll();
        harness = null;
      }
      assert.deepEqual(problems, [], 'BullMQ objects did not close cleanly');
    }

    it(`processes ${JOBS} jobs on several workers: retries, backoff, delays, priorities, failures, QueueEvents`, { timeout: 600_000 }, () =>
      withHarness(async (h) => {
        const name = 'main';
        const started = Date.now();
        // The event stream must keep every event until QueueEvents has read it
        // (BullMQ trims it to about 10,000 entries by default).
        const queue = h.queue(name, { streams: { events: { maxLen: JOBS * 20 + 10_000 } } });
        await queue.getVersion(); // the queue's meta (with the stream's maxLen) is written
        const queueEvents = h.queueEvents(name);
        const events = recordEvents(queueEvents);
        await queueEvents.waitUntilReady();

        const expectedFailed = [];
        const expectedCompleted = [];
        for (let i = 0; i < JOBS; i++) (kindOf(i) === 'doomed' ? expectedFailed : expectedCompleted).push(i);

        const calls = new Int32Array(JOBS);
        const completedByWorkers = counter(expectedCompleted.length);
        const failedByWorkers = counter(expectedFailed.length);
        const processor = async (job) => {
          const { i } = job.data;
          calls[i] += 1;
          const attempt = job.attemptsStarted;
          if (job.name === 'doomed') throw new Error(`doomed job ${i}, attempt ${attempt}`);
          if (isFlaky(job.name) && attempt === 1) throw new Error(`flaky job ${i}, attempt ${attempt}`);
          return { i, square: i * i, attempt };
        };
        const WORKERS = 4;
        for (let w = 0; w < WORKERS; w++) {
          const worker = h.worker(name, processor, { concurrency: 16, name: `worker-${w}` });
          worker.on('completed', () => completedByWorkers.add());
          worker.on('failed', (job) => {
            if (job && job.attemptsMade >= job.opts.attempts) failedByWorkers.add();
          });
        }

        const jobIds = new Array(JOBS);
        const CHUNK = 1000;
        for (let start = 0; start < JOBS; start += CHUNK) {
          const batch = [];
          for (let i = start; i < Math.min(JOBS, start + CHUNK); i++) {
            batch.push({ name: kindOf(i), data: { i }, opts: optsOf(i) });
          }
          const added = await queue.addBulk(batch);
          added.forEach((job, k) => {
            jobIds[start + k] = job.id;
          });
        }
        const addedAt = Date.now();
        assert.equal(new Set(jobIds).size, JOBS, 'every job got its own id');

        await withDeadline(
          Promise.all([completedByWorkers.reached, failedByWorkers.reached]),
          540_000,
          `workers to finish ${JOBS} jobs (completed ${completedByWorkers.value}/${completedByWorkers.target}, ` +
            `failed ${failedByWorkers.value}/${failedByWorkers.target})`,
          () => describeCounts(queue),
        );
        const processedAt = Date.now();

        assert.deepEqual(
          await queue.getJobCounts(),
          counts({ completed: expectedCompleted.length, failed: expectedFailed.length }),
        );

        // Read page by page here; reading a whole set in one call is checked
        // separately at the end.
        const completed = await fetchJobs(queue, 'completed');
        const failed = await fetchJobs(queue, 'failed');
        assert.deepEqual(
          completed.map((j) => j.id).sort(),
          expectedCompleted.map((i) => jobIds[i]).sort(),
          'the completed set holds exactly the jobs that should complete',
        );
        assert.deepEqual(
          failed.map((j) => j.id).sort(),
          expectedFailed.map((i) => jobIds[i]).sort(),
          'the failed set holds exactly the doomed jobs',
        );

        for (const job of completed) {
          const { i } = job.data;
          const kind = kindOf(i);
          const attempts = isFlaky(kind) ? 2 : 1;
          assert.equal(job.name, kind);
          assert.deepEqual(job.returnvalue, { i, square: i * i, attempt: attempts }, `return value of job ${i}`);
          assert.equal(job.attemptsMade, attempts, `attemptsMade of job ${i} (${kind})`);
          assert.equal(job.attemptsStarted, attempts, `attemptsStarted of job ${i} (${kind})`);
          assert.equal(calls[i], attempts, `processor calls for job ${i} (${kind})`);
          assert.ok(job.finishedOn >= job.processedOn, `job ${i}: finishedOn >= processedOn`);
          if (kind === 'delayed') {
            assert.ok(
              job.processedOn - job.timestamp >= job.opts.delay,
              `delayed job ${i} ran ${job.processedOn - job.timestamp} ms after it was added, before its ${job.opts.delay} ms delay`,
            );
          }
          if (kind === 'flaky-backoff') {
            assert.ok(job.processedOn - job.timestamp >= 20, `job ${i} was retried before its backoff`);
          }
          if (isFlaky(kind)) {
            assert.equal(job.failedReason, `flaky job ${i}, attempt 1`, `failedReason kept from attempt 1 of job ${i}`);
          }
        }
        for (const job of failed) {
          const { i } = job.data;
          assert.equal(job.name, 'doomed');
          assert.equal(job.failedReason, `doomed job ${i}, attempt 2`);
          assert.equal(job.attemptsMade, 2, `attemptsMade of failed job ${i}`);
          assert.equal(job.attemptsStarted, 2, `attemptsStarted of failed job ${i}`);
          assert.equal(job.returnvalue, null);
          assert.equal(calls[i], 2, `processor calls for failed job ${i}`);
          assert.ok(job.stacktrace.length === 2, `job ${i} keeps one stack trace per attempt`);
        }

        await drainEvents(h, name, queueEvents);
        assert.deepEqual(events.duplicates, [], 'no job had two completed/failed events');
        assert.equal(events.completed.size, expectedCompleted.length, "'completed' events == completed jobs");
        assert.equal(events.failed.size, expectedFailed.length, "'failed' events == failed jobs");
        assert.equal(events.retriesExhausted, expectedFailed.length, "'retries-exhausted' events == failed jobs");
        for (const job of completed) {
          assert.deepEqual(events.completed.get(job.id), job.returnvalue, `'completed' event of job ${job.id}`);
        }
        for (const job of failed) {
          assert.equal(events.failed.get(job.id), job.failedReason, `'failed' event of job ${job.id}`);
        }

        // The whole completed and failed sets in one call each (one script
        // returning every job: ids and hashes).
        const wholeSet = (what, promise) =>
          promise.catch((err) => {
            throw new Error(`${what} failed: ${err.message}`);
          });
        const allCompleted = await wholeSet(
          `getCompleted(0, -1) with ${completed.length} completed jobs`,
          queue.getCompleted(0, -1),
        );
        assert.deepEqual(
          allCompleted.map((j) => j.id).sort(),
          completed.map((j) => j.id).sort(),
          'getCompleted(0, -1) returns the whole completed set',
        );
        const allFailed = await wholeSet(`getFailed(0, -1) with ${failed.length} failed jobs`, queue.getFailed(0, -1));
        assert.deepEqual(
          allFailed.map((j) => j.id).sort(),
          failed.map((j) => j.id).sort(),
          'getFailed(0, -1) returns the whole failed set',
        );
        h.assertNoErrors();
        console.log(
          `${server.name}: ${JOBS} jobs added in ${addedAt - started} ms, all finished after ` +
            `${processedAt - started} ms, checked after ${Date.now() - started} ms`,
        );
      }),
    );

    it('priorities: one worker at concurrency 1 takes jobs by priority, FIFO within a priority', { timeout: 120_000 }, () =>
      withHarness(async (h) => {
        const name = 'prio';
        const queue = h.queue(name);
        const queueEvents = h.queueEvents(name);
        const events = recordEvents(queueEvents);
        // Large priorities too (BullMQ's score is priority * 2^32 + a counter).
        const PRIORITIES = [0, 1, 2, 3, 10, 100, 65_536, 1_000_000];
        const specs = [];
        for (let i = 0; i < 200; i++) specs.push({ i, priority: PRIORITIES[(i * 5 + (i >> 3)) % PRIORITIES.length] });
        await queue.addBulk(
          specs.map(({ i, priority }) => ({ name: 'p', data: { i }, opts: priority ? { priority } : {} })),
        );
        const withPriority = specs.filter((s) => s.priority).length;
        assert.deepEqual(
          await queue.getJobCounts(),
          counts({ waiting: specs.length - withPriority, prioritized: withPriority }),
        );
        // No priority: the wait list, taken first in FIFO order; then by priority.
        const expected = [...specs]
          .sort((a, b) => (a.priority || -1) - (b.priority || -1) || a.i - b.i)
          .map((s) => s.i);

        const order = [];
        const done = counter(specs.length);
        const worker = h.worker(
          name,
          async (job) => {
            order.push(job.data.i);
            return job.data.i;
          },
          { concurrency: 1 },
        );
        worker.on('completed', () => done.add());
        await withDeadline(done.reached, 60_000, 'the prioritized jobs', () => describeCounts(queue));
        assert.deepEqual(order, expected);
        assert.deepEqual(await queue.getJobCounts(), counts({ completed: specs.length }));
        await drainEvents(h, name, queueEvents);
        assert.equal(events.completed.size, specs.length);
        assert.equal(events.failed.size, 0);
        h.assertNoErrors();
      }),
    );

    it('flows: parents run after all their children and see their results', { timeout: 120_000 }, () =>
      withHarness(async (h) => {
        const parentsName = 'flow-parents';
        const childrenName = 'flow-children';
        const FLOWS = 40;
        const CHILDREN = 5;
        const parents = h.queue(parentsName);
        const children = h.queue(childrenName);
        const parentQE = h.queueEvents(parentsName);
        const childQE = h.queueEvents(childrenName);
        const parentEvents = recordEvents(parentQE);
        const childEvents = recordEvents(childQE);

        // Child 0 of every fourth flow fails its first attempt: its parent
        // must wait for the retry.
        const flaky = (f, k) => k === 0 && f % 4 === 0;
        const flows = [];
        for (let f = 0; f < FLOWS; f++) {
          flows.push({
            name: 'parent',
            queueName: parentsName,
            data: { f },
            children: Array.from({ length: CHILDREN }, (_, k) => ({
              name: 'child',
              queueName: childrenName,
              data: { f, k },
              opts: flaky(f, k) ? { attempts: 2, backoff: { type: 'fixed', delay: 30 } } : {},
            })),
          });
        }
        const trees = await h.flowProducer().addBulk(flows);
        const childCount = FLOWS * CHILDREN;
        assert.deepEqual(await parents.getJobCounts(), counts({ 'waiting-children': FLOWS }));
        assert.deepEqual(await children.getJobCounts(), counts({ waiting: childCount }));

        // `step` orders the processors' calls: a parent's call must come after
        // every one of its children's processors returned.
        let step = 0;
        const childReturnedAt = new Map();
        const seenByParent = new Map();
        const parentsDone = counter(FLOWS);
        const childrenDone = counter(childCount);
        const parentWorker = h.worker(
          parentsName,
          async (job) => {
            const startedAt = ++step;
            const deps = await job.getDependenciesCount();
            const values = await job.getChildrenValues();
            seenByParent.set(job.data.f, { deps, values, startedAt });
            const sum = Object.values(values).reduce((acc, v) => acc + v.value, 0);
            return { f: job.data.f, sum, children: Object.keys(values).length };
          },
          { concurrency: 4 },
        );
        parentWorker.on('completed', () => parentsDone.add());
        for (let w = 0; w < 2; w++) {
          const worker = h.worker(
            childrenName,
            async (job) => {
              const { f, k } = job.data;
              if (flaky(f, k) && job.attemptsStarted === 1) throw new Error(`child ${f}/${k} first attempt`);
              childReturnedAt.set(`${f}/${k}`, ++step);
              return { f, k, value: f * 100 + k };
            },
            { concurrency: 8 },
          );
          worker.on('completed', () => childrenDone.add());
        }
        await withDeadline(
          Promise.all([parentsDone.reached, childrenDone.reached]),
          90_000,
          `the flows (parents ${parentsDone.value}/${FLOWS}, children ${childrenDone.value}/${childCount})`,
          () => describeCounts(parents, children),
        );

        assert.deepEqual(await parents.getJobCounts(), counts({ completed: FLOWS }));
        assert.deepEqual(await children.getJobCounts(), counts({ completed: childCount }));
        for (const tree of trees) {
          const { f } = tree.job.data;
          const parent = await parents.getJob(tree.job.id);
          const expectedSum = Array.from({ length: CHILDREN }, (_, k) => f * 100 + k).reduce((a, b) => a + b, 0);
          assert.deepEqual(parent.returnvalue, { f, sum: expectedSum, children: CHILDREN }, `parent of flow ${f}`);
          assert.equal(parent.attemptsMade, 1);
          const seen = seenByParent.get(f);
          assert.deepEqual(seen.deps, { processed: CHILDREN, unprocessed: 0, ignored: 0, failed: 0 }, `flow ${f}`);
          const expectedValues = {};
          for (const node of tree.children) {
            const childJob = await children.getJob(node.job.id);
            const { k } = childJob.data;
            expectedValues[`bull:${childrenName}:${node.job.id}`] = { f, k, value: f * 100 + k };
            assert.equal(childJob.attemptsMade, flaky(f, k) ? 2 : 1, `attempts of child ${f}/${k}`);
            assert.equal(childJob.parentKey, `bull:${parentsName}:${tree.job.id}`);
            assert.ok(
              seen.startedAt > childReturnedAt.get(`${f}/${k}`),
              `the parent of flow ${f} ran before its child ${k} had returned`,
            );
          }
          assert.deepEqual(seen.values, expectedValues, `children values seen by the parent of flow ${f}`);
        }

        await drainEvents(h, parentsName, parentQE);
        await drainEvents(h, childrenName, childQE);
        assert.deepEqual([...parentEvents.duplicates, ...childEvents.duplicates], []);
        assert.equal(parentEvents.completed.size, FLOWS);
        assert.equal(childEvents.completed.size, childCount);
        assert.equal(parentEvents.failed.size + childEvents.failed.size, 0);
        h.assertNoErrors();
      }),
    );

    it('rate limiter: two workers share one limit of 5 jobs per 300 ms', { timeout: 120_000 }, () =>
      withHarness(async (h) => {
        const name = 'limited';
        const MAX = 5;
        const DURATION = 300;
        const COUNT = 30;
        const queue = h.queue(name);
        const queueEvents = h.queueEvents(name);
        const events = recordEvents(queueEvents);
        await queue.addBulk(Array.from({ length: COUNT }, (_, i) => ({ name: 'l', data: { i } })));

        const starts = [];
        const done = counter(COUNT);
        for (let w = 0; w < 2; w++) {
          const worker = h.worker(
            name,
            async (job) => {
              starts.push(Date.now());
              return job.data.i * 3;
            },
            { concurrency: 10, limiter: { max: MAX, duration: DURATION } },
          );
          worker.on('completed', () => done.add());
        }
        await withDeadline(done.reached, 60_000, 'the rate-limited jobs', () => describeCounts(queue));

        // The limiter counts jobs per window of DURATION ms (a key with a TTL),
        // so job k*MAX cannot start before window k, k*DURATION ms after the
        // first window opened. A few ms of slack for the time between the
        // server opening a window and the processor being called.
        starts.sort((a, b) => a - b);
        const SLACK = 50;
        for (let k = 1; k * MAX < COUNT; k++) {
          const gap = starts[k * MAX] - starts[0];
          assert.ok(gap >= k * DURATION - SLACK, `job #${k * MAX} started ${gap} ms after the first (limit: ${k * DURATION} ms)`);
        }
        const completed = await queue.getCompleted(0, -1);
        assert.deepEqual(
          completed.map((j) => j.returnvalue).sort((a, b) => a - b),
          Array.from({ length: COUNT }, (_, i) => i * 3),
        );
        assert.deepEqual(await queue.getJobCounts(), counts({ completed: COUNT }));
        await drainEvents(h, name, queueEvents);
        assert.equal(events.completed.size, COUNT);
        assert.equal(events.failed.size, 0);
        h.assertNoErrors();
      }),
    );
  });
}
