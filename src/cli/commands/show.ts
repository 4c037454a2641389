/** `spool-inspect show`: one crash: its raw crash, dumps with sizes and checksums, state and last error. */
import { showCrash } from '../../spool/operator/queries.js';
import { type Command, crashIdArgument, withSpool } from '../command.js';
import { write, writeJson, iso, formatBytes, oneLine, table, keyValues, ago } from '../format.js';
import { listingJson } from './list.js';

export const show: Command = {
  name: 'show',
  brief: 'one crash: state, errors, dumps, raw crash JSON',
  synopsis: 'show <crash_id>',
  description: `One crash: state, attempts, last error, dump names with sizes and SHA-256, and the raw
crash JSON (annotations and metadata) exactly as it will be uploaded. For a crash in storage and
not announced yet (stored, or dead after the queue refused it), attempts and last error are those
of announcing it. <crash_id> may carry the
bp- prefix the collector answers with.`,
  options: {},
  positionals: ['crash_id'],
  run(context) {
    const crashId = crashIdArgument(context.positionals[0]);
    const now = Date.now();
    const { crash, dumps } = withSpool(context.spoolDir, 'read', (spool) => showCrash(spool, crashId));
    let rawCrash: unknown = crash.rawCrashJson;
    try {
      rawCrash = JSON.parse(crash.rawCrashJson);
    } catch {
      // shown as stored
    }
    if (context.json) {
      writeJson({ ...listingJson(crash), dumps: dumps, raw_crash: rawCrash });
      return 0;
    }
    const nextAttempt =
      crash.state === 'dead'
        ? crash.storedAt !== null
          ? `- (dead-letter: in storage since ${iso(crash.storedAt)}, not announced: the queue refused its ID; requeue to announce it)`
          : '- (dead-letter: requeue to retry)'
        : crash.state === 'stored'
          ? `${crash.nextAttemptAt <= now ? 'due now' : iso(crash.nextAttemptAt)!} (in storage since ${iso(crash.storedAt)}, not announced yet: its ID waits for the queue)`
          : crash.nextAttemptAt <= now
            ? 'due now'
            : iso(crash.nextAttemptAt)!;
    write(
      [
        keyValues([
          ['crash id', crash.crashId],
          ['state', crash.state],
          ['received', ago(crash.receivedAt, now)],
          ['size', `${formatBytes(crash.bytes)} (${crash.bytes} bytes)`],
          ['attempts', String(crash.attempts)],
          ['next attempt', nextAttempt],
          ['last error', crash.lastError === null ? '-' : oneLine(crash.lastError, 2000)],
        ]),
        '',
        'dumps',
        table(
          ['NAME', 'SIZE', 'BYTES', 'SHA256'],
          dumps.map((dump) => [dump.name, formatBytes(dump.bytes), String(dump.bytes), dump.sha256]),
          new Set([1, 2]),
        ),
        '',
        'raw crash',
        typeof rawCrash === 'string' ? rawCrash : JSON.stringify(rawCrash, null, 2),
      ].join('\n'),
    );
    return 0;
  },
};
