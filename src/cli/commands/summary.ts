/** `spool-inspect summary`: counts, ages, attempts, errors, file sizes and the integrity check of a spool. */
import { spoolIntegrity, spoolSummary } from '../../spool/operator/queries.js';
import { type Command, PROGRAM, withSpool } from '../command.js';
import { write, writeJson, iso, ageSeconds, formatBytes, oneLine, table, keyValues, ago } from '../format.js';

export const summary: Command = {
  name: 'summary',
  brief: 'counts, ages, errors, sizes, integrity (the default)',
  synopsis: 'summary [--no-check]',
  description: `Counts, bytes and ages of pending, stored (not yet announced on the queue) and dead-letter crashes, an attempts histogram, the
distinct last errors with their counts, database and WAL sizes, the dedup index's size (reports
a client's retry is recognised by, kept for DEDUP_WINDOW), and SQLite's integrity check
(PRAGMA quick_check; it reads the whole file, so it takes seconds on a spool of gigabytes;
--no-check skips it). The default command. Exits 2 when the integrity check fails.`,
  options: { 'no-check': { type: 'boolean' } },
  positionals: [],
  run(context) {
    const now = Date.now();
    const { data, integrity, fallback } = withSpool(context.spoolDir, 'read', (spool) => ({
      data: spoolSummary(spool),
      integrity: context.values['no-check'] === true ? undefined : spoolIntegrity(spool),
      fallback: spool.fallback,
    }));
    const integrityOk = integrity === undefined ? null : integrity.length === 1 && integrity[0] === 'ok';
    if (context.json) {
      writeJson({
        spool: context.spoolDir,
        pending: data.pending,
        stored: data.stored,
        dead: data.dead,
        bytes: data.bytes,
        oldest_received_at: iso(data.oldestReceivedAt),
        oldest_age_seconds: ageSeconds(data.oldestReceivedAt, now),
        newest_received_at: iso(data.newestReceivedAt),
        newest_age_seconds: ageSeconds(data.newestReceivedAt, now),
        oldest_pending_received_at: iso(data.oldestPendingAt),
        oldest_pending_age_seconds: ageSeconds(data.oldestPendingAt, now),
        attempts: data.attempts,
        errors: data.errors.map((group) => ({
          error: group.error,
          crashes: group.crashes,
          pending: group.pending,
          dead: group.dead,
          latest_received_at: iso(group.latestReceivedAt),
          latest_crash_id: group.latestCrashId,
        })),
        database_bytes: data.databaseBytes,
        wal_bytes: data.walBytes,
        free_bytes: data.freeBytes,
        dedup_entries: data.dedupEntries,
        dedup_oldest_created_at: iso(data.dedupOldestAt),
        integrity: integrity === undefined ? { checked: false, ok: null, findings: [] } : { checked: true, ok: integrityOk, findings: integrity },
        read_only: !fallback,
      });
    } else {
      const integrityText =
        integrity === undefined ? 'not checked (--no-check)' : integrityOk ? 'ok (quick_check)' : `FAILED: ${integrity.slice(0, 5).join('; ')}`;
      const lines = [
        keyValues([
          ['spool', context.spoolDir],
          ['pending', `${data.pending} crashes`],
          ['stored, not yet announced', `${data.stored} crashes`],
          ['dead-letter', `${data.dead} crashes`],
          ['total size', `${formatBytes(data.bytes)} (${data.bytes} bytes)`],
          ['oldest', ago(data.oldestReceivedAt, now)],
          ['newest', ago(data.newestReceivedAt, now)],
          ['oldest pending', ago(data.oldestPendingAt, now)],
          ['database file', `${formatBytes(data.databaseBytes)} (free pages ${formatBytes(data.freeBytes)})`],
          ['WAL file', formatBytes(data.walBytes)],
          ['dedup index', `${data.dedupEntries} reports (oldest ${ago(data.dedupOldestAt, now)})`],
          ['integrity', integrityText],
        ]),
      ];
      if (data.attempts.length > 0) {
        lines.push(
          '',
          'attempts histogram',
          table(
            ['ATTEMPTS', 'PENDING', 'DEAD'],
            data.attempts.map((bucket) => [String(bucket.attempts), String(bucket.pending), String(bucket.dead)]),
            new Set([0, 1, 2]),
          ),
        );
      }
      if (data.errors.length > 0) {
        const shown = data.errors.slice(0, 10);
        lines.push(
          '',
          `last errors (${data.errors.length} distinct${data.errors.length > shown.length ? `, ${shown.length} most frequent shown` : ''})`,
          table(
            ['CRASHES', 'PENDING', 'DEAD', 'LATEST CRASH', 'ERROR'],
            shown.map((group) => [String(group.crashes), String(group.pending), String(group.dead), group.latestCrashId, oneLine(group.error, 120)]),
            new Set([0, 1, 2]),
          ),
        );
      }
      write(lines.join('\n'));
    }
    if (integrityOk === false) {
      process.stderr.write(`${PROGRAM}: spool ${context.spoolDir} failed its integrity check\n`);
      return 2;
    }
    return 0;
  },
};
