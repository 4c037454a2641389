/** What every spool-inspect command is made of: its spec, its context, the argument checks, the spool it opens. */
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { isCrashId } from '../crash-id.js';
import { parseDuration } from '../duration.js';
import { closeInspectedSpool, describeSpoolError, openSpoolForInspection, type InspectedSpool } from '../spool/operator/inspection.js';
import { normalizeCrashId } from '../spool/operator/queries.js';
import type { CrashState } from '../spool/schema.js';

export const PROGRAM = 'spool-inspect';

export class UsageError extends Error {}

export type OptionSpec = { type: 'string' | 'boolean'; short?: string };
export type Values = Record<string, string | boolean | undefined>;

export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  spool: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export const COMMON_HELP = `Options for every command:
  --spool DIR   the spool directory; default: SPOOL_DIR from the environment, read as the
                collector reads it (else ./spool); never created
  --json        machine-readable output (JSON on stdout)
  -h, --help    this help`;

export interface Context {
  values: Values;
  positionals: string[];
  spoolDir: string;
  json: boolean;
}

export interface Command {
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

// ---- argument helpers -----------------------------------------------------------------------

export function crashIdArgument(raw: string | undefined): string {
  if (raw === undefined) throw new UsageError('a crash ID is required');
  const crashId = normalizeCrashId(raw);
  if (!isCrashId(crashId)) throw new UsageError(`not a crash ID: "${raw}"`);
  return crashId;
}

export function stateOption(raw: string | boolean | undefined): CrashState | undefined {
  if (raw === undefined) return undefined;
  if (raw === 'pending' || raw === 'stored' || raw === 'dead') return raw;
  throw new UsageError(`--state must be pending, stored or dead, got "${String(raw)}"`);
}

export function limitOption(raw: string | boolean | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const text = String(raw);
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`--limit must be a whole number of at least 1, got "${text}"`);
  }
  return Number(text);
}

export function durationOption(name: string, raw: string | boolean | undefined): number | undefined {
  if (raw === undefined) return undefined;
  try {
    return parseDuration(String(raw));
  } catch (error) {
    throw new UsageError(`--${name}: ${(error as Error).message}`);
  }
}

/** Exactly one of `<crash_id>` or `--all-dead`. */
export function target(context: Context): { crashId: string } | { allDead: true } {
  const allDead = context.values['all-dead'] === true;
  if (allDead && context.positionals.length > 0) throw new UsageError('give a crash ID or --all-dead, not both');
  if (allDead) return { allDead: true };
  if (context.positionals.length !== 1) throw new UsageError('give one crash ID or --all-dead');
  return { crashId: crashIdArgument(context.positionals[0]) };
}

export function withSpool<T>(dir: string, mode: 'read' | 'write', work: (spool: InspectedSpool) => T): T {
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
export function operatorLogger(spoolDir: string) {
  return pino(
    { base: { pid: process.pid, tool: PROGRAM, spool: spoolDir }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: 2, sync: true }),
  );
}
