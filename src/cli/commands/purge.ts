/** `spool-inspect purge`: deletes crashes for good, logging each one (I6). */
import { purgeAllDead, purgeCandidates, purgeCrash, PurgeWouldLoseAnnouncement, type PurgedCrash } from '../../spool/operator/admin.js';
import { type Command, PROGRAM, target, withSpool, operatorLogger } from '../command.js';
import { write, writeJson, formatBytes } from '../format.js';

export const purge: Command = {
  name: 'purge',
  brief: 'delete crashes for good (logged)',
  synopsis: 'purge <crash_id> | --all-dead  --yes [--unannounced]',
  description: `Deletes crashes from the spool for good (each crash row and its dumps in one
transaction): one crash by ID, in any state, or every dead-letter crash. Refuses without --yes.
Logs one JSON line on stderr per deleted crash ("crash purged by operator"). Safe on a live
node: only the named crashes are deleted, and a crash whose upload is under way may still
reach storage whole. A running collector re-reads its spool size every 2 s while the spool
is above half of SPOOL_MAX_BYTES, so the freed bytes count within seconds.
A crash in storage whose ID was never announced (stored, or dead after the queue refused it)
is refused unless --unannounced is given too: purging it means Socorro's processor is never
told of it. The log line says "announced": false for each such crash.`,
  options: { 'all-dead': { type: 'boolean' }, yes: { type: 'boolean' }, unannounced: { type: 'boolean' } },
  positionals: ['crash_id'],
  optionalPositionals: true,
  run(context) {
    const which = target(context);
    const candidates = withSpool(context.spoolDir, 'read', (spool) => purgeCandidates(spool, which));
    const unannounced = candidates.filter((crash) => crash.unannounced);
    if (unannounced.length > 0 && context.values['unannounced'] !== true) {
      process.stderr.write(
        `${PROGRAM}: ${unannounced.length} of these crashes ${unannounced.length === 1 ? 'is' : 'are'} in storage and never announced ` +
          `on the processing queue (${unannounced.slice(0, 3).map((crash) => crash.crashId).join(', ')}${unannounced.length > 3 ? ', …' : ''}); ` +
          'purged, Socorro would never process them. Add --unannounced to purge them all the same\n',
      );
      return 2;
    }
    if (context.values['yes'] !== true) {
      const bytes = candidates.reduce((sum, crash) => sum + crash.bytes, 0);
      process.stderr.write(
        `${PROGRAM}: purge deletes crashes for good and would delete ${candidates.length} ` +
          `crash${candidates.length === 1 ? '' : 'es'} (${formatBytes(bytes)}); add --yes to do it\n`,
      );
      return 2;
    }
    const logger = operatorLogger(context.spoolDir);
    const onPurged = (crash: PurgedCrash) =>
      logger.warn(
        {
          crash_id: crash.crashId,
          state: crash.state,
          bytes: crash.bytes,
          attempts: crash.attempts,
          last_error: crash.lastError,
          ...(crash.unannounced ? { in_storage: true, announced: false } : {}),
        },
        'crash purged by operator',
      );
    const allowUnannounced = context.values['unannounced'] === true;
    let purged: PurgedCrash[];
    try {
      purged = withSpool(context.spoolDir, 'write', (spool) =>
        'allDead' in which ? purgeAllDead(spool, allowUnannounced, onPurged) : purgeCrash(spool, which.crashId, allowUnannounced, onPurged),
      );
    } catch (error) {
      if (!(error instanceof PurgeWouldLoseAnnouncement)) throw error;
      process.stderr.write(`${PROGRAM}: ${error.message} (it was stored meanwhile); add --unannounced to purge it all the same\n`);
      return 2;
    }
    const bytes = purged.reduce((sum, crash) => sum + crash.bytes, 0);
    if (context.json) {
      writeJson({ purged: purged.map((crash) => crash.crashId), bytes });
    } else {
      write(
        purged.length === 0
          ? 'no dead-letter crashes to purge'
          : `purged ${purged.length} crash${purged.length === 1 ? '' : 'es'} (${formatBytes(bytes)}): ${purged.map((crash) => crash.crashId).join(', ')}`,
      );
    }
    return 0;
  },
};
