// What the Node client suites share: starting and stopping the servers they run
// against, redis-server (the reference, which shows the tests themselves are
// right) and redoubt-server ($REDOUBT_BIN or target/debug/redoubt-server at the
// workspace root), each on a free loopback port; and waits with a deadline.
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const WORKSPACE = path.resolve(__dirname, '..', '..', '..');
const REDOUBT = process.env.REDOUBT_BIN || path.join(WORKSPACE, 'target', 'debug', 'redoubt-server');
const REDIS = process.env.REDIS_SERVER_BIN || 'redis-server';

// The servers a suite runs against: both, or those named in the environment
// variable `only` (e.g. BULLMQ_SERVERS=redoubt-server). Exits with a message
// naming what is missing if a server's binary is not there; `suite` names the
// tests in that message.
function serversUnderTest(only, suite, names = ['redis-server', 'redoubt-server']) {
  const servers = [
    {
      name: 'redis-server',
      binary: REDIS,
      args: (port) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    },
    {
      name: 'redoubt-server',
      binary: REDOUBT,
      args: (port) => ['--port', String(port), '--bind', '127.0.0.1', '--admin-port', '0'],
    },
  ]
    .filter((s) => names.includes(s.name))
    .filter((s) => !only || !process.env[only] || process.env[only].split(',').includes(s.name));
  if (!fs.existsSync(REDOUBT) && servers.some((s) => s.name === 'redoubt-server')) {
    console.error(
      `redoubt-server binary is missing: ${REDOUBT} does not exist ` +
        '(run `cargo build -p redoubt-server` or set REDOUBT_BIN)',
    );
    process.exit(1);
  }
  if (servers.some((s) => s.name === 'redis-server') && spawnSync(REDIS, ['--version']).status !== 0) {
    console.error(
      `redis-server is missing: \`${REDIS} --version\` failed ` +
        `(Debian: apt-get install redis-server, or set REDIS_SERVER_BIN); the ${suite} tests run against it too`,
    );
    process.exit(1);
  }
  return servers;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Resolves once the server answers PING; rejects if it exits or takes > 10 s.
function waitReady(child, port, name) {
  const deadline = Date.now() + 10_000;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) {
        reject(new Error(`${name} exited with code ${child.exitCode}`));
        return;
      }
      const sock = net.connect(port, '127.0.0.1');
      let buf = '';
      const retry = () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`${name} did not answer on port ${port}`));
        else setTimeout(attempt, 20);
      };
      sock.on('connect', () => sock.write('PING\r\n'));
      sock.on('data', (d) => {
        buf += d;
        if (buf.includes('+PONG\r\n')) {
          sock.destroy();
          resolve();
        }
      });
      sock.on('error', retry);
      sock.setTimeout(1000, retry);
    };
    attempt();
  });
}

// Servers still running if this process exits early (the `after` hooks stop
// them normally).
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function startServer(server, workdir) {
  let lastError;
  for (let i = 0; i < 5; i++) {
    const port = await freePort();
    const child = spawn(server.binary, server.args(port), {
      cwd: workdir,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    running.add(child);
    child.once('exit', () => running.delete(child));
    try {
      await waitReady(child, port, server.name);
      return { child, port };
    } catch (err) {
      lastError = err;
      child.kill('SIGKILL');
    }
  }
  throw lastError;
}

async function stopServer(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// Races `promise` against a deadline; on timeout the error carries `diagnose()`.
async function withDeadline(promise, ms, what, diagnose) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(async () => {
      let detail = '';
      if (diagnose) {
        try {
          detail = `; ${await diagnose()}`;
        } catch (err) {
          detail = `; (diagnostics failed: ${err.message})`;
        }
      }
      reject(new Error(`timed out after ${ms} ms waiting for ${what}${detail}`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

module.exports = { serversUnderTest, startServer, stopServer, withDeadline };
