/**
 * A fleet, with real processes: three collectors (`node dist/main.js`, a spool each, one bucket in
 * Ceph RGW) behind Debian's HAProxy running deploy/haproxy.cfg, with clients posting
 * Crashpad-style reports through it without pause.
 * - Rolling restart (SIGTERM a node, wait for its exit, start it on the same spool, next):
 *   no failed post, every node exits 0, every acknowledged crash stored byte-identical; the first
 *   node back gets its share of new requests gradually (HAProxy's slowstart).
 * - kill -9 of one node under load: only requests in flight to it fail; what it acknowledged is
 *   delivered after it restarts.
 * FLEET_ROUNDS (default 1) repeats the rolling restart, for longer runs by hand.
 *
 * A node's shutdown deadline is 6 s (3 s of it the load balancer's grace): with clients posting
 * without pause it exits with a backlog, which it uploads after its restart. That keeps the number
 * of crashes to check, and the test's time, down.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CollectorProcess, freePort, tempDir } from '../helpers/collector-process.js';
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { postReport, type Answer } from '../helpers/http-client.js';
import { makeReport, type Report } from '../helpers/multipart.js';
import { metric, scrape } from '../helpers/metrics-text.js';
import { sleep } from '../helpers/raw-socket.js';
import { expectedFrom, s3Target, storedProblems, type S3TestTarget } from '../helpers/stored-crashes.js';

const HAPROXY_CONFIG = new URL('../../deploy/haproxy.cfg', import.meta.url);
const ROUNDS = Number(process.env['FLEET_ROUNDS'] ?? '1');
const CLIENTS = 6;
const NODE_ENV = { SHUTDOWN_LB_GRACE_SECONDS: '3', SHUTDOWN_DEADLINE_SECONDS: '6', SPOOL_DURABILITY: 'full' };

const dumps = [...loadFixtureDumps().values()].filter((dump) => dump.length < 300_000);

interface Node {
  spool: string;
  port: number;
  process: CollectorProcess;
}

let s3: S3TestTarget;
let nodes: Node[] = [];
let haproxy: ChildProcess;
let frontPort: number;
/** What HAProxy logged on stdout (the shipped configuration's `log stdout`, `option httplog`). */
let haproxyLog = '';

/** deploy/haproxy.cfg with this run's addresses: the bind line and the server addresses change, nothing else. */
function haproxyConfig(front: number, backends: number[]): string {
  const shipped = readFileSync(HAPROXY_CONFIG, 'utf8');
  const binds = shipped.match(/^\s*bind .*$/gm) ?? [];
  assert.equal(binds.length, 1, 'one bind line');
  let text = shipped.replace(binds[0]!, `    bind 127.0.0.1:${front}`);
  const servers = [...shipped.matchAll(/^(\s*server collector\d+ )\S+/gm)];
  assert.equal(servers.length, backends.length, 'a server line per node');
  servers.forEach((server, index) => {
    text = text.replace(server[0], `${server[1]}127.0.0.1:${backends[index]}`);
  });
  return text;
}

async function startNode(spool: string, port: number): Promise<CollectorProcess> {
  return CollectorProcess.start({ SPOOL_DIR: spool, ...s3.env, ...NODE_ENV }, port);
}

/** Waits until HAProxy passes requests to the node again (its health checks need `rise` passes). */
async function routedAgain(): Promise<void> {
  await sleep(1500);
}

before(async () => {
  s3 = s3Target('fleet');
  nodes = [];
  for (let index = 0; index < 3; index += 1) {
    const spool = tempDir(`fleet-node${index}`);
    const port = await freePort();
    nodes.push({ spool, port, process: await startNode(spool, port) });
  }
  frontPort = await freePort();
  const config = join(tempDir('haproxy'), 'haproxy.cfg');
  writeFileSync(config, haproxyConfig(frontPort, nodes.map((node) => node.port)));
  haproxy = spawn('haproxy', ['-f', config, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy.stdout!.on('data', (chunk: Buffer) => (haproxyLog += chunk.toString()));
  let stderr = '';
  haproxy.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const answer = await fetch(`http://127.0.0.1:${frontPort}/__lbheartbeat__`).catch(() => undefined);
    if (answer?.status === 200) break;
    if (Date.now() > deadline || haproxy.exitCode !== null) throw new Error(`HAProxy did not come up: ${stderr}`);
    await sleep(100);
  }
  await routedAgain();
});

after(async () => {
  haproxy?.kill('SIGKILL');
  for (const node of nodes) await node.process.stop();
});

/** Clients posting through HAProxy until `stop()`; every answer kept with its report. */
function startClients() {
  const acknowledged = new Map<string, Report>();
  const failures: string[] = [];
  let posts = 0;
  let running = true;
  const client = async (index: number) => {
    for (let n = 0; running; n += 1) {
      const report = makeReport('crashpad', dumps[(index + n) % dumps.length]!);
      let answer: Answer;
      try {
        answer = await postReport(`http://127.0.0.1:${frontPort}`, report);
      } catch (error) {
        failures.push(`connection: ${(error as Error).message}`);
        continue;
      } finally {
        posts += 1;
      }
      const crashId = /^CrashID=bp-(\S+)\n$/.exec(answer.body)?.[1];
      if (answer.status === 200 && crashId) acknowledged.set(crashId, report);
      else failures.push(`${answer.status} ${answer.body.slice(0, 100)}`);
    }
  };
  const done = Promise.all(Array.from({ length: CLIENTS }, (_, index) => client(index)));
  return {
    acknowledged,
    failures,
    get posts() {
      return posts;
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

async function assertAllStored(acknowledged: Map<string, Report>): Promise<void> {
  const deadline = Date.now() + 120_000;
  let missing = [...acknowledged.keys()];
  let problems = new Map<string, string>();
  while (missing.length > 0 && Date.now() < deadline) {
    // 32 reads at a time: ~1.5x the default's rate against the local RGW, and still no resets.
    problems = await storedProblems(s3.reader, missing.map((id) => [id, expectedFrom(acknowledged.get(id)!)]), 32);
    missing = [...problems.keys()];
    if (missing.length > 0) await sleep(500);
  }
  assert.deepEqual([...problems].slice(0, 10), [], `${missing.length} of ${acknowledged.size} acknowledged crashes not stored byte-identical`);
}

/** Crashes a node acknowledged since it started. */
async function acknowledgedBy(node: Node): Promise<number> {
  return metric(await scrape(node.process.url), 'crashspool_ack_seconds_count');
}

/**
 * Requests each node acknowledged in the 2 s after `restarted` took its first one since its start.
 * Round robin at full weight gives it as many as each other node; slowstart over 10 s gives it
 * ~10-25% of a full share in these seconds.
 */
async function shareAfterRestart(restarted: Node): Promise<{ fresh: number; others: number[] }> {
  const deadline = Date.now() + 10_000;
  while ((await acknowledgedBy(restarted)) === 0) {
    assert.ok(Date.now() < deadline, 'HAProxy sends the restarted node requests again');
    await sleep(50);
  }
  const before = await Promise.all(nodes.map(acknowledgedBy));
  await sleep(2000);
  const gained = nodes.map(async (node, index) => (await acknowledgedBy(node)) - before[index]!);
  const counts = await Promise.all(gained);
  const index = nodes.indexOf(restarted);
  return { fresh: counts[index]!, others: counts.filter((_, other) => other !== index) };
}

test('rolling restart under load: no failed post, every node exits 0, the first node back gets its share gradually, every acknowledged crash stored', async (t) => {
  const clients = startClients();
  await sleep(1000);
  const exits: (number | null)[] = [];
  let share: { fresh: number; others: number[] } | undefined;
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const node of nodes) {
      node.process.kill('SIGTERM');
      const { code } = await node.process.exited;
      exits.push(code);
      node.process = await startNode(node.spool, node.port);
      // The others are at full weight only for the first restart (slowstart does not apply at HAProxy's own start).
      if (share === undefined) share = await shareAfterRestart(node);
      else await routedAgain();
    }
  }
  await sleep(500);
  await clients.stop();
  t.diagnostic(`${clients.posts} posts through HAProxy during ${ROUNDS} rolling restart(s) of 3 nodes; ${clients.acknowledged.size} acknowledged`);
  assert.deepEqual(clients.failures, [], 'no failed post');
  assert.deepEqual(exits, Array(3 * ROUNDS).fill(0), 'every node exits 0');
  t.diagnostic(`acknowledged in the 2 s after the first restarted node took its first request: ${share!.fresh}, others ${share!.others.join(', ')}`);
  assert.ok(share!.fresh < 0.5 * Math.max(...share!.others), `restarted node took ${share!.fresh}, the others ${share!.others.join(', ')}`);
  assert.ok(clients.acknowledged.size > 20, `${clients.acknowledged.size} acknowledged`);
  // HAProxy writes a request's log line after the answer went out: give the last lines a moment.
  const loggedPosts = () => haproxyLog.split('\n').filter((line) => line.includes('"POST /submit')).length;
  for (const deadline = Date.now() + 5_000; loggedPosts() < clients.acknowledged.size && Date.now() < deadline; ) await sleep(50);
  const logged = loggedPosts();
  assert.ok(logged >= clients.acknowledged.size, `HAProxy logged ${logged} POST /submit lines for ${clients.acknowledged.size} acknowledged posts`);
  await assertAllStored(clients.acknowledged);
});

test('kill -9 of one node under load: only requests in flight to it fail; its acknowledged crashes are delivered after it restarts', async (t) => {
  const victim = nodes[1]!;
  const clients = startClients();
  await sleep(1500);
  victim.process.kill('SIGKILL');
  await victim.process.exited;
  // The requests that were in flight to it fail now (HAProxy answers 502 as the sockets close).
  await sleep(300);
  const failedAtKill = clients.failures.length;
  await sleep(3000);
  const failedWhileDown = clients.failures.length - failedAtKill;
  victim.process = await startNode(victim.spool, victim.port);
  await routedAgain();
  await clients.stop();
  t.diagnostic(`${clients.posts} posts, ${clients.acknowledged.size} acknowledged, ${clients.failures.length} failed: ${clients.failures.join(' | ')}`);
  assert.ok(clients.failures.length <= CLIENTS, `at most the ${CLIENTS} requests in flight fail, got ${clients.failures.length}`);
  assert.equal(failedWhileDown, 0, 'once the node is down, HAProxy sends nothing there');
  await assertAllStored(clients.acknowledged);
});
