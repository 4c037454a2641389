/** `spool-inspect drain`: uploads a dead node's spool with the collector's own drainer. */
import { formatDuration, parseDuration } from '../../duration.js';
import { loadConfig } from '../../config.js';
import { logProcessWarnings } from '../../logger.js';
import { type Command, PROGRAM, UsageError, operatorLogger } from '../command.js';
import { write, writeJson, oneLine, table } from '../format.js';
import { drainSpool } from '../spool-drain.js';

export const drain: Command = {
  name: 'drain',
  brief: "upload every pending crash (a dead node's spool) and announce it, then exit",
  synopsis: 'drain [--max-time DURATION] [--no-announce]',
  description: `Uploads every pending crash with the collector's own drainer and storage settings, read
from the environment as the collector reads them (STORAGE_URL, S3_ENDPOINT, AWS_*, DRAIN_*,
STORAGE_*), and with PUBLISH_URL announces each stored crash on the processing queue (also those
stored before): for the spool of a node that died for good, attached elsewhere. Progress
(uploaded, rate, pending, stored) goes to stderr every second. A spool whose collector announced
is refused without PUBLISH_URL (exit 2, nothing touched), as the collector refuses it;
--no-announce (PUBLISH_URL=none) lets its crashes leave unannounced, each logged on stderr.
Exits 0 once the spool is empty; 1 when crashes remain after --max-time (default 10m) or are
dead-lettered, each listed (storage or the queue not answering ends so); 2 without touching the
spool when a setting is wrong (credentials missing or refused, no such bucket or queue: storage
and the queue are tried once first); 3 without touching anything when a live collector holds the
spool (stop it first, or let it drain).`,
  options: { 'max-time': { type: 'string' }, 'no-announce': { type: 'boolean' } },
  positionals: [],
  async run(context) {
    const raw = context.values['max-time'];
    let maxMs: number;
    try {
      maxMs = parseDuration(typeof raw === 'string' ? raw : '10m');
    } catch (error) {
      throw new UsageError(`--max-time: ${(error as Error).message}`);
    }
    const noAnnounce = context.values['no-announce'] === true;
    if (noAnnounce && (process.env['PUBLISH_URL'] ?? '').trim() !== '' && process.env['PUBLISH_URL']?.trim() !== 'none') {
      throw new UsageError('--no-announce and PUBLISH_URL say opposite things; give one');
    }
    let config;
    try {
      config = loadConfig({ ...process.env, SPOOL_DIR: context.spoolDir, ...(noAnnounce ? { PUBLISH_URL: 'none' } : {}) });
    } catch (error) {
      throw new UsageError((error as Error).message.replace(/\n\s*/g, '; '));
    }
    const logger = operatorLogger(context.spoolDir);
    logger.level = process.env['LOG_LEVEL'] ?? 'warn';
    logProcessWarnings(logger);
    const outcome = await drainSpool(config, logger, maxMs, (progress) => {
      const rate = progress.seconds > 0 ? progress.uploaded / progress.seconds : 0;
      process.stderr.write(`${PROGRAM} drain: ${progress.uploaded} uploaded (${rate.toFixed(1)}/s), ${progress.pending} pending, ${progress.stored} stored, ${progress.seconds.toFixed(0)} s\n`);
    });
    if (context.json) {
      writeJson({
        uploaded: outcome.uploaded,
        unannounced: outcome.unannounced,
        seconds: outcome.seconds,
        left: outcome.left.map((crash) => ({ crash_id: crash.crashId, state: crash.state, attempts: crash.attempts, last_error: crash.lastError })),
      });
    } else {
      const lines = [`uploaded ${outcome.uploaded} crash${outcome.uploaded === 1 ? '' : 'es'} in ${formatDuration(outcome.seconds * 1000)}`];
      if (outcome.unannounced > 0) lines.push(`${outcome.unannounced} crash${outcome.unannounced === 1 ? '' : 'es'} left unannounced (--no-announce), each logged`);
      if (outcome.left.length > 0) {
        lines.push(
          `${outcome.left.length} crash${outcome.left.length === 1 ? '' : 'es'} left in the spool:`,
          table(
            ['CRASH ID', 'STATE', 'ATTEMPTS', 'LAST ERROR'],
            outcome.left.map((crash) => [crash.crashId, crash.state, String(crash.attempts), oneLine(crash.lastError ?? '', 100)]),
            new Set([2]),
          ),
        );
      }
      write(lines.join('\n'));
    }
    return outcome.left.length === 0 ? 0 : 1;
  },
};
