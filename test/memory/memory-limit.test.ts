/**
 * Memory follows the container (I4): in a real memory cgroup, at the Kubernetes manifest's limit and
 * at 512 MiB, a default collector (INFLIGHT_MAX_BYTES and DRAIN_INFLIGHT_MAX_BYTES `auto`) takes 32
 * Mozilla-sized (~24 MB) reports posted at once without being OOM-killed: every post is answered
 * (200, 503 or 413), the accepted ones reach storage, and the kernel killed nothing. With the fixed
 * 512 MiB budget of before, the kernel OOM-killed it at 512 MiB and every post was reset.
 * Needs root (a cgroup of its own); prints each run's peak RSS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { parseByteSize } from '../../src/config.js';
import { inflightBudgetFor } from '../../src/memory-limit.js';
import { Cleanups } from '../helpers/cleanups.js';
import { CollectorProcess, tempDir } from '../helpers/collector-process.js';
import { postReport } from '../helpers/http-client.js';
import { MemoryCgroup } from '../helpers/memory-cgroup.js';
import { makeReport } from '../helpers/multipart.js';
import { fileReader, storedProblem, expectedFrom } from '../helpers/stored-crashes.js';

const MiB = 1024 * 1024;
const cleanups = new Cleanups();
const unavailable = MemoryCgroup.unavailable();
if (unavailable && process.env['CI'] === 'true') throw new Error(`memory-limit tests cannot run in CI: ${unavailable}`);

/** The memory limit of the collector container in deploy/kubernetes.yaml. */
function manifestLimit(): number {
  const documents = parseAllDocuments(readFileSync(new URL('../../deploy/kubernetes.yaml', import.meta.url), 'utf8')).map((document) => document.toJS());
  const statefulSet = documents.find((document) => document?.kind === 'StatefulSet');
  const limit = statefulSet.spec.template.spec.containers[0].resources.limits.memory as string;
  return parseByteSize(limit.replace(/i$/, ''));
}

const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

for (const [name, limit] of [
  ["the manifest's limit", manifestLimit()],
  ['512 MiB', 512 * MiB],
] as const) {
  test(`I4: memory follows the container: at ${name} (${limit / MiB} MiB), 32 × ~24 MB reports at once: no OOM kill, every post answered`, { skip: unavailable }, async (t) => {
    const cgroup = MemoryCgroup.create('crashspool-memory', limit);
    cleanups.add(() => cgroup.remove());
    const files = tempDir('memory-files');
    const collector = cleanups.keep(await CollectorProcess.start({ SPOOL_DIR: tempDir('memory-spool'), STORAGE_URL: `file://${files}` }, undefined, cgroup.prefix()));
    const started = collector.logs.find((line) => line.msg === 'collector started')!;
    assert.equal(started['memory_limit_source'], 'cgroup', 'the limit is read from the cgroup');
    assert.equal(started['memory_limit'], limit);
    assert.equal(started['inflight_max_bytes'], inflightBudgetFor(limit));

    // Two ~12 MB dumps of random bytes each: a Mozilla report of ~24 MB, not compressible.
    const reports = Array.from({ length: 32 }, () => makeReport('mozilla', randomBytes(11.5 * MiB)));
    const answers = await Promise.all(reports.map((report) => postReport(collector.url, report).then((answer) => answer, (error: Error) => error)));
    const peak = peakRss(collector.child.pid!);
    const statuses = answers.map((answer) => (answer instanceof Error ? `error: ${answer.message}` : String(answer.status)));
    const counted = Object.fromEntries([...new Set(statuses)].map((status) => [status, statuses.filter((one) => one === status).length]));
    t.diagnostic(`limit ${limit / MiB} MiB, budget ${inflightBudgetFor(limit) / MiB} MiB: answers ${JSON.stringify(counted)}, peak RSS ${Math.round(peak / MiB)} MiB (${Math.round((100 * peak) / limit)}% of the limit), cgroup peak ${Math.round((cgroup.peakBytes() ?? 0) / MiB)} MiB`);
    assert.equal(cgroup.oomKills(), 0, 'the kernel killed nothing');
    assert.equal(collector.child.exitCode, null, 'the collector runs');
    assert.deepEqual(statuses.filter((status) => !['200', '503', '413'].includes(status)), [], 'every post answered 200, 503 or 413');
    assert.ok(statuses.includes('200'), 'some were taken');

    const reader = fileReader(files);
    for (const [index, answer] of answers.entries()) {
      if (answer instanceof Error || answer.status !== 200) continue;
      const crashId = /CrashID=bp-(\S+)/.exec(answer.body)![1]!;
      const deadline = Date.now() + 30_000;
      let problem = await storedProblem(reader, crashId, expectedFrom(reports[index]!));
      while (problem !== undefined && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        problem = await storedProblem(reader, crashId, expectedFrom(reports[index]!));
      }
      assert.equal(problem, undefined, `${crashId} stored as posted`);
    }
    assert.equal(cgroup.oomKills(), 0, 'nor while draining');
  });
}
