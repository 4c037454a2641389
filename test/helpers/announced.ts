/**
 * What the publishing tests check, read the way Socorro's processor reads the queue: every
 * acknowledged crash announced, each message a crash ID and nothing else, and that crash's raw
 * crash already in storage when its ID is read.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { isCrashId } from '../../src/crash-id.js';
import { rawCrashKey } from '../../src/storage/storage-keys.js';
import type { CollectorProcess } from './collector-process.js';
import { metric, scrape } from './metrics-text.js';
import type { TestQueue } from './queues.js';
import { sleep } from './raw-socket.js';
import type { S3TestTarget } from './stored-crashes.js';

/** Polls `condition` every 100 ms; fails naming `what` after `timeoutMs`. */
export async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(100);
  }
}

/** Crashes in the collector's spool in `state` (pending, stored, dead), from its metrics. */
export const spoolCount = async (collector: CollectorProcess, state: string) => metric(await scrape(collector.url), 'crashspool_spool_crashes', { state });

/**
 * Reads the queue until every acknowledged crash was announced (or the time is up), checking each
 * message as it is read; returns how many messages came and how many were repeats. `earlier`:
 * crashes acknowledged and announced before, which may come again (at least once).
 */
export async function expectAnnounced(
  t: TestContext,
  queue: TestQueue,
  target: S3TestTarget,
  acked: readonly string[],
  timeoutMs = 60_000,
  unacknowledgedAllowed = 0,
  earlier: readonly string[] = [],
) {
  const seen = new Map<string, number>();
  const deadline = Date.now() + timeoutMs;
  while ([...acked].some((crashId) => !seen.has(crashId)) && Date.now() < deadline) {
    for (const body of await queue.receive()) {
      assert.ok(isCrashId(body), `a message body is a crash ID and nothing else: ${JSON.stringify(body)}`);
      assert.ok(await target.reader.get(rawCrashKey(body)), `announced ${body} before its raw crash was in storage`);
      seen.set(body, (seen.get(body) ?? 0) + 1);
    }
    await sleep(100);
  }
  const missing = acked.filter((crashId) => !seen.has(crashId));
  const messages = [...seen.values()].reduce((sum, count) => sum + count, 0);
  t.diagnostic(`${acked.length} acknowledged, ${seen.size} announced in ${messages} messages (${messages - seen.size} repeats), ${missing.length} missing`);
  assert.deepEqual(missing, [], 'every acknowledged crash is announced');
  // A crash committed just before a kill reached no client: announced (it is in storage), never acknowledged.
  const unacknowledged = [...seen.keys()].filter((crashId) => !acked.includes(crashId) && !earlier.includes(crashId));
  assert.ok(unacknowledged.length <= unacknowledgedAllowed, `announced but never acknowledged: ${unacknowledged.join(', ')}`);
  return { messages, repeats: messages - seen.size };
}
