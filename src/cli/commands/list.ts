/** `spool-inspect list`: the crashes in a spool, one per line, filtered and ordered. */
import { listCrashes, type CrashListing } from '../../spool/operator/queries.js';
import { type Command, stateOption, limitOption, durationOption, withSpool } from '../command.js';
import { write, writeJson, iso, formatBytes, oneLine, table } from '../format.js';

export function listingJson(crash: CrashListing) {
  return {
    crash_id: crash.crashId,
    state: crash.state,
    received_at: iso(crash.receivedAt),
    bytes: crash.bytes,
    dumps: crash.dumpNames,
    attempts: crash.attempts,
    // When the drainer will try it; a pending crash due now has no time of its own (never 1970).
    next_attempt_at: crash.state === 'pending' && crash.nextAttemptAt > 0 ? iso(crash.nextAttemptAt) : null,
    due_now: crash.state === 'pending' && crash.nextAttemptAt <= Date.now(),
    last_error: crash.lastError,
    // In storage and never announced: stored (waiting for the queue), or dead after storage took it.
    stored_at: iso(crash.storedAt),
  };
}

export const list: Command = {
  name: 'list',
  brief: 'one crash per line, newest first',
  synopsis: 'list [--state pending|stored|dead] [--limit N] [--older-than DURATION] [--oldest-first]',
  description: `One crash per line: ID, state, received (ISO 8601 UTC), size, number of dumps, attempts,
last error. A stored crash's attempts and last error are those of announcing it (the queue's
answer); "dead (stored)" is a crash in storage whose ID the queue refused for good. Newest first unless --oldest-first. --older-than takes a DURATION such as 30s, 15m,
2h or 7d and keeps crashes received longer ago than that.`,
  options: {
    state: { type: 'string' },
    limit: { type: 'string' },
    'older-than': { type: 'string' },
    'oldest-first': { type: 'boolean' },
  },
  positionals: [],
  run(context) {
    const state = stateOption(context.values['state']);
    const limit = limitOption(context.values['limit']);
    const olderThan = durationOption('older-than', context.values['older-than']);
    const crashes = withSpool(context.spoolDir, 'read', (spool) =>
      listCrashes(spool, {
        ...(state ? { state } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(olderThan !== undefined ? { receivedBefore: Date.now() - olderThan } : {}),
        oldestFirst: context.values['oldest-first'] === true,
      }),
    );
    if (context.json) {
      writeJson(crashes.map(listingJson));
    } else if (crashes.length === 0) {
      write('no crashes match');
    } else {
      write(
        table(
          ['CRASH ID', 'STATE', 'RECEIVED', 'SIZE', 'DUMPS', 'ATTEMPTS', 'LAST ERROR'],
          crashes.map((crash) => [
            crash.crashId,
            crash.state === 'dead' && crash.storedAt !== null ? 'dead (stored)' : crash.state,
            iso(crash.receivedAt)!,
            formatBytes(crash.bytes),
            String(crash.dumpNames.length),
            String(crash.attempts),
            crash.lastError === null ? '-' : oneLine(crash.lastError, 100),
          ]),
          new Set([3, 4, 5]),
        ),
      );
    }
    return 0;
  },
};
