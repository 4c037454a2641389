/**
 * `scripts/spool-inspect`: see and act on a spool, on a live node or on a spool directory copied
 * from a dead one. Arguments and output only; the work is in spool-admin.ts.
 *
 * Exit codes: 0 ok, 1 unknown crash ID, 2 bad arguments or an unusable spool (missing, damaged,
 * busy, other schema version) — always one line on stderr, never a stack trace.
 * Human-readable tables by default, `--json` for scripts. Read subcommands open the spool
 * read-only; `requeue` and `purge` write in short transactions, safe next to a running collector.
 * `purge` logs one pino JSON line on stderr per deleted crash (I6: nothing dropped silently).
 */
import Database from 'better-sqlite3';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { isCrashId } from '../crash-id.js';
import { formatDuration, parseDuration } from '../duration.js';
import { loadConfig } from '../config.js';
import { SpoolLocked } from '../spool/spool-lock.js';
import { drainSpool } from './spool-drain.js';
import { closeInspectedSpool, CrashNotFound, describeSpoolError, openSpoolForInspection, SpoolUnusable, type InspectedSpool } from '../spool/spool-inspection.js';
import { ExportTargetExists, exportCrash, listCrashes, normalizeCrashId, showCrash, spoolIntegrity, spoolSummary, type CrashListing } from '../spool/spool-queries.js';
import { purgeAllDead, purgeCandidates, purgeCrash, requeueAllDead, requeueCrash, type PurgedCrash } from '../spool/spool-admin.js';
import type { CrashState } from '../spool/spool-schema.js';

const PROGRAM = 'spool-inspect';

class UsageError extends Error {}

type OptionSpec = { type: 'string' | 'boolean'; short?: string };
type Values = Record<string, string | boolean | undefined>;

const COMMON_OPTIONS: Record<string, OptionSpec> = {
  spool: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const COMMON_HELP = `Options for every command:
  --spool DIR   the collector's SPOOL_DIR (default ./spool); never created
  --json        machine-readable output (JSON on stdout)
  -h, --help    this help`;

interface Context {
  values: Values;
  positionals: string[];
  spoolDir: string;
  json: boolean;
}

interface Command {
  name: string;
  synopsis: string;
  /** One line for the general help. */
  brief: string;
  description: string;
  options: Record<string, OptionSpec>;
  /** Positional argument names; their count is enforced unless `run` checks them itself. */
  positionals: string[];
  optionalPositionals?: boolean;
  run(context: Context): number | Promise<number>;
}

// ---- output helpers -------------------------------------------------------------------------

function write(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function writeJson(value: unknown): void {
  write(JSON.stringify(value, null, 2));
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function ageSeconds(ms: number | null, now: number): number | null {
  return ms === null ? null : Math.max(0, Math.round((now - ms) / 1000));
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** One line, at most `max` characters: for error messages in tables. */
function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Left-aligned columns except those in `right`; the last column is not padded. */
function table(header: string[], rows: string[][], right: ReadonlySet<number> = new Set()): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? '').length)));
  return all
    .map((row) =>
      row
        .map((cell, column) => {
          if (column === row.length - 1 && !right.has(column)) return cell;
          return right.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!);
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function keyValues(pairs: [string, string][]): string {
  const width = Math.max(...pairs.map(([key]) => key.length));
  return pairs.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n');
}

function ago(ms: number | null, now: number): string {
  return ms === null ? '-' : `${formatDuration(now - ms)} ago (${iso(ms)})`;
}

// ---- argument helpers -----------------------------------------------------------------------

function crashIdArgument(raw: string | undefined): string {
  if (raw === undefined) throw new UsageError('a crash ID is required');
  const crashId = normalizeCrashId(raw);
  if (!isCrashId(crashId)) throw new UsageError(`not a crash ID: "${raw}"`);
  return crashId;
}

function stateOption(raw: string | boolean | undefined): CrashState | undefined {
  if (raw === undefined) return undefined;
  if (raw === 'pending' || raw === 'dead') return raw;
  throw new UsageError(`--state must be pending or dead, got "${String(raw)}"`);
}

function limitOption(raw: string | boolean | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const text = String(raw);
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`--limit must be a whole number of at least 1, got "${text}"`);
  }
  return Number(text);
}

function durationOption(name: string, raw: string | boolean | undefined): number | undefined {
  if (raw === undefined) return undefined;
  try {
    return parseDuration(String(raw));
  } catch (error) {
    throw new UsageError(`--${name}: ${(error as Error).message}`);
  }
}

/** Exactly one of `<crash_id>` or `--all-dead`. */
function target(context: Context): { crashId: string } | { allDead: true } {
  const allDead = context.values['all-dead'] === true;
  if (allDead && context.positionals.length > 0) throw new UsageError('give a crash ID or --all-dead, not both');
  if (allDead) return { allDead: true };
  if (context.positionals.length !== 1) throw new UsageError('give one crash ID or --all-dead');
  return { crashId: crashIdArgument(context.positionals[0]) };
}

function withSpool<T>(dir: string, mode: 'read' | 'write', work: (spool: InspectedSpool) => T): T {
  const spool = openSpoolForInspection(dir, mode);
  try {
    return work(spool);
  } catch (error) {
    if (error instanceof Database.SqliteError) throw describeSpoolError(error, spool.file, spool.mode);
    throw error;
  } finally {
    closeInspectedSpool(spool);
  }
}

/** Operator actions are logged like the collector logs (pino JSON), on stderr so stdout stays the output. */
function operatorLogger(spoolDir: string) {
  return pino(
    { base: { pid: process.pid, tool: PROGRAM, spool: spoolDir }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: 2, sync: true }),
  );
}

// ---- commands -------------------------------------------------------------------------------

const summary: Command = {
  name: 'summary',
  brief: 'counts, ages, errors, sizes, integrity (the default)',
  synopsis: 'summary [--no-check]',
  description: `Counts, bytes and ages of pending and dead-letter crashes, an attempts histogram, the
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

function listingJson(crash: CrashListing) {
  return {
    crash_id: crash.crashId,
    state: crash.state,
    received_at: iso(crash.receivedAt),
    bytes: crash.bytes,
    dumps: crash.dumpNames,
    attempts: crash.attempts,
    next_attempt_at: crash.state === 'pending' ? iso(crash.nextAttemptAt) : null,
    last_error: crash.lastError,
  };
}

const list: Command = {
  name: 'list',
  brief: 'one crash per line, newest first',
  synopsis: 'list [--state pending|dead] [--limit N] [--older-than DURATION] [--oldest-first]',
  description: `One crash per line: ID, state, received (ISO 8601 UTC), size, number of dumps, attempts,
last error. Newest first unless --oldest-first. --older-than takes a DURATION such as 30s, 15m,
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
            crash.state,
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

const show: Command = {
  name: 'show',
  brief: 'one crash: state, errors, dumps, raw crash JSON',
  synopsis: 'show <crash_id>',
  description: `One crash: state, attempts, last error, dump names with sizes and SHA-256, and the raw
crash JSON (annotations and metadata) exactly as it will be uploaded. <crash_id> may carry the
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
    const nextAttempt = crash.state === 'dead' ? '- (dead-letter: requeue to retry)' : crash.nextAttemptAt <= now ? 'due now' : iso(crash.nextAttemptAt)!;
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

const exportCommand: Command = {
  name: 'export',
  brief: 'write raw_crash.json and the dumps into a directory',
  synopsis: 'export <crash_id> <dir>',
  description: `Writes the crash into <dir> (created when missing): raw_crash.json and each dump as
<dump_name>.dmp, bytes exactly as spooled, to examine it or re-submit it by hand. Never
overwrites a file.`,
  options: {},
  positionals: ['crash_id', 'dir'],
  run(context) {
    const crashId = crashIdArgument(context.positionals[0]);
    const dir = resolve(context.positionals[1]!);
    const files = withSpool(context.spoolDir, 'read', (spool) => exportCrash(spool, crashId, dir));
    if (context.json) {
      writeJson({ crash_id: crashId, dir, files });
    } else {
      write(
        [
          `exported crash ${crashId} to ${dir}`,
          table(
            ['FILE', 'SIZE', 'SHA256'],
            files.map((file) => [file.path, formatBytes(file.bytes), file.sha256]),
            new Set([1]),
          ),
        ].join('\n'),
      );
    }
    return 0;
  },
};

const requeue: Command = {
  name: 'requeue',
  brief: 'move dead-letter crashes back to pending',
  synopsis: 'requeue <crash_id> | --all-dead',
  description: `Moves dead-letter crashes back to pending: attempts reset to 0, due at once, last error
kept. A running collector picks them up the next time its drainer looks for work (the next
crash received, or its next retry). A crash that is pending already is left as it is.`,
  options: { 'all-dead': { type: 'boolean' } },
  positionals: ['crash_id'],
  optionalPositionals: true,
  run(context) {
    const which = target(context);
    const result = withSpool(context.spoolDir, 'write', (spool) =>
      'allDead' in which ? requeueAllDead(spool) : requeueCrash(spool, which.crashId),
    );
    const logger = operatorLogger(context.spoolDir);
    for (const crashId of result.requeued) logger.info({ crash_id: crashId }, 'crash requeued by operator');
    if (context.json) {
      writeJson({ requeued: result.requeued, already_pending: result.alreadyPending });
    } else if (result.alreadyPending.length > 0) {
      write(`crash ${result.alreadyPending.join(', ')} is pending already; nothing to requeue`);
    } else {
      write(
        result.requeued.length === 0
          ? 'no dead-letter crashes to requeue'
          : `requeued ${result.requeued.length} crash${result.requeued.length === 1 ? '' : 'es'}: ${result.requeued.join(', ')}`,
      );
    }
    return 0;
  },
};

const purge: Command = {
  name: 'purge',
  brief: 'delete crashes for good (logged)',
  synopsis: 'purge <crash_id> | --all-dead  --yes',
  description: `Deletes crashes from the spool for good (each crash row and its dumps in one
transaction): one crash by ID, in any state, or every dead-letter crash. Refuses without --yes.
Logs one JSON line on stderr per deleted crash ("crash purged by operator"). Safe on a live
node: only the named crashes are deleted, and a crash whose upload is under way may still
reach storage whole. A running collector re-reads its spool size every 2 s while the spool
is above half of SPOOL_MAX_BYTES, so the freed bytes count within seconds.`,
  options: { 'all-dead': { type: 'boolean' }, yes: { type: 'boolean' } },
  positionals: ['crash_id'],
  optionalPositionals: true,
  run(context) {
    const which = target(context);
    if (context.values['yes'] !== true) {
      const candidates = withSpool(context.spoolDir, 'read', (spool) => purgeCandidates(spool, which));
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
        { crash_id: crash.crashId, state: crash.state, bytes: crash.bytes, attempts: crash.attempts, last_error: crash.lastError },
        'crash purged by operator',
      );
    const purged = withSpool(context.spoolDir, 'write', (spool) =>
      'allDead' in which ? purgeAllDead(spool, onPurged) : purgeCrash(spool, which.crashId, onPurged),
    );
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

const drain: Command = {
  name: 'drain',
  brief: "upload every pending crash (a dead node's spool), then exit",
  synopsis: 'drain [--max-time DURATION]',
  description: `Uploads every pending crash with the collector's own drainer and storage settings, read
from the environment as the collector reads them (STORAGE_URL, S3_ENDPOINT, AWS_*, DRAIN_*,
STORAGE_*): for the spool of a node that died for good, attached elsewhere. Progress (uploaded,
rate, pending) goes to stderr every second. Exits 0 once the spool is empty; 1 when crashes remain
after --max-time (default 10m) or are dead-lettered, each listed; 3 without touching anything when
a live collector holds the spool (stop it first, or let it drain).`,
  options: { 'max-time': { type: 'string' } },
  positionals: [],
  async run(context) {
    const raw = context.values['max-time'];
    let maxMs: number;
    try {
      maxMs = parseDuration(typeof raw === 'string' ? raw : '10m');
    } catch (error) {
      throw new UsageError(`--max-time: ${(error as Error).message}`);
    }
    let config;
    try {
      config = loadConfig({ ...process.env, SPOOL_DIR: context.spoolDir });
    } catch (error) {
      throw new UsageError((error as Error).message.replace(/\n\s*/g, '; '));
    }
    const logger = operatorLogger(context.spoolDir);
    logger.level = process.env['LOG_LEVEL'] ?? 'warn';
    const outcome = await drainSpool(config, logger, maxMs, (progress) => {
      const rate = progress.seconds > 0 ? progress.uploaded / progress.seconds : 0;
      process.stderr.write(`${PROGRAM} drain: ${progress.uploaded} uploaded (${rate.toFixed(1)}/s), ${progress.pending} pending, ${progress.seconds.toFixed(0)} s\n`);
    });
    if (context.json) {
      writeJson({
        uploaded: outcome.uploaded,
        seconds: outcome.seconds,
        left: outcome.left.map((crash) => ({ crash_id: crash.crashId, state: crash.state, attempts: crash.attempts, last_error: crash.lastError })),
      });
    } else {
      const lines = [`uploaded ${outcome.uploaded} crash${outcome.uploaded === 1 ? '' : 'es'} in ${formatDuration(outcome.seconds * 1000)}`];
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

const COMMANDS: Command[] = [summary, list, show, exportCommand, requeue, purge, drain];

function commandHelp(command: Command): string {
  return `Usage: ${PROGRAM} ${command.synopsis} [--spool DIR] [--json]\n\n${command.description}\n\n${COMMON_HELP}\n`;
}

function generalHelp(): string {
  const width = 'help [COMMAND]'.length;
  return `Usage: ${PROGRAM} [COMMAND] [OPTIONS]

See and act on a crashspool spool: on a live node (safe while the collector runs) or on a spool
directory copied from a dead one. Read commands open the spool read-only; none creates one.

Commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.brief}`).join('\n')}
  ${'help [COMMAND]'.padEnd(width)}  a command's options and details

${COMMON_HELP}

Exit codes: 0 ok, 1 unknown crash ID (drain: crashes left), 2 bad arguments or unusable spool,
3 drain refused: a live collector holds the spool.
Run \`${PROGRAM} COMMAND --help\` for a command's details.
`;
}

/**
 * Where the command name is in `argv`: the first word that is neither an option nor the value of
 * a string option, so `--spool DIR list` works as well as `list --spool DIR`. -1: none.
 */
function commandIndex(argv: string[]): number {
  const takesValue = new Set(
    [COMMON_OPTIONS, ...COMMANDS.map((command) => command.options)].flatMap((options) =>
      Object.entries(options)
        .filter(([, spec]) => spec.type === 'string')
        .map(([name]) => `--${name}`),
    ),
  );
  for (let index = 0; index < argv.length; index += 1) {
    const token = argv[index]!;
    if (token === '--') return -1;
    if (takesValue.has(token)) index += 1;
    else if (!token.startsWith('-')) return index;
  }
  return -1;
}

/** Runs the CLI on `argv` (without node and script); returns the exit code. */
async function run(argv: string[]): Promise<number> {
  let command: Command = summary;
  let rest = argv;
  const at = commandIndex(argv);
  const name = at === -1 ? undefined : argv[at]!;
  if (name === 'help') {
    const topic = argv[at + 1];
    const named = COMMANDS.find((candidate) => candidate.name === topic);
    if (topic !== undefined && !named) throw new UsageError(`unknown command "${topic}"`);
    write(named ? commandHelp(named) : generalHelp());
    return 0;
  }
  if (name !== undefined) {
    const named = COMMANDS.find((candidate) => candidate.name === name);
    if (!named) throw new UsageError(`unknown command "${name}"; commands: ${COMMANDS.map((c) => c.name).join(', ')}`);
    command = named;
    rest = [...argv.slice(0, at), ...argv.slice(at + 1)];
  }
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: { ...COMMON_OPTIONS, ...command.options }, allowPositionals: true, strict: true }) as {
      values: Values;
      positionals: string[];
    };
  } catch (error) {
    throw new UsageError(`${command.name}: ${(error as Error).message.split('. ')[0]}`, { cause: error });
  }
  if (parsed.values['help'] === true) {
    write(name === undefined ? generalHelp() : commandHelp(command));
    return 0;
  }
  const wanted = command.positionals.length;
  const got = parsed.positionals.length;
  if (got > wanted || (!command.optionalPositionals && got < wanted)) {
    throw new UsageError(
      `${command.name} takes ${wanted === 0 ? 'no arguments' : command.positionals.map((name) => `<${name}>`).join(' ')}` +
        `${got > 0 ? `, got: ${parsed.positionals.join(' ')}` : ''}`,
    );
  }
  const spoolOption = parsed.values['spool'];
  const context: Context = {
    values: parsed.values,
    positionals: parsed.positionals,
    spoolDir: resolve(typeof spoolOption === 'string' ? spoolOption : './spool'),
    json: parsed.values['json'] === true,
  };
  try {
    return await command.run(context);
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(`${command.name}: ${error.message}`);
    throw error;
  }
}

/** Maps an error to its one line on stderr and the exit code. */
function fail(error: unknown, argv: string[]): number {
  const say = (message: string) => process.stderr.write(`${PROGRAM}: ${message}\n`);
  if (error instanceof UsageError) {
    const at = commandIndex(argv);
    const command = at === -1 ? undefined : COMMANDS.find((candidate) => candidate.name === argv[at]);
    say(`${error.message} (see ${PROGRAM} ${command ? `${command.name} ` : ''}--help)`);
    return 2;
  }
  if (error instanceof CrashNotFound) {
    say(error.message);
    return 1;
  }
  if (error instanceof SpoolLocked) {
    say(`refused, nothing touched: ${error.message}`);
    return 3;
  }
  if (error instanceof SpoolUnusable || error instanceof ExportTargetExists) {
    say(error.message);
    return 2;
  }
  const { code } = error as { code?: string };
  say(`${(error as Error)?.message ?? String(error)}${code ? ` (${code})` : ''}`);
  return 2;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  // `spool-inspect list | head` closes stdout early: not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  let code: number;
  try {
    code = await run(argv);
  } catch (error) {
    code = fail(error, argv);
  }
  process.exitCode = code;
}

await main();
