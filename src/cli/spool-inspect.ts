/**
 * `scripts/spool-inspect`: see and act on a spool, on a live node or on a spool directory copied
 * from a dead one: the command line and its errors; one file per command in commands/, the work on
 * the spool in spool/operator/ (queries, admin).
 *
 * Exit codes: 0 ok, 1 unknown crash ID, 2 bad arguments or an unusable spool (missing, damaged,
 * busy, other schema version) — always one line on stderr, never a stack trace.
 * Human-readable tables by default, `--json` for scripts. Read subcommands open the spool
 * read-only; `requeue` and `purge` write in short transactions, safe next to a running collector.
 * `purge` logs one pino JSON line on stderr per deleted crash (I6: nothing dropped silently).
 */
import { resolve } from 'node:path';
import { settingValue } from '../config.js';
import { parseArgs } from 'node:util';
import { SpoolLocked } from '../spool/lock.js';
import { CrashNotFound, SpoolUnusable } from '../spool/operator/inspection.js';
import { ExportTargetExists } from '../spool/operator/queries.js';
import { type Command, type Context, COMMON_OPTIONS, COMMON_HELP, PROGRAM, UsageError, type Values } from './command.js';
import { write } from './format.js';
import { summary } from './commands/summary.js';
import { list } from './commands/list.js';
import { show } from './commands/show.js';
import { exportCommand } from './commands/export.js';
import { requeue } from './commands/requeue.js';
import { purge } from './commands/purge.js';
import { drain } from './commands/drain.js';

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
/** Node's parseArgs explains itself over several lines; one line, in our words. */
function argumentProblem(error: Error & { code?: string }): string {
  const option = /'(--?[\w-]+)/.exec(error.message)?.[1];
  if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && /ambiguous/.test(error.message)) {
    return `${option} needs a value, and a value starting with "-" is taken for an option: write ${option}=<value>`;
  }
  if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return `${option} needs a value`;
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${option}`;
  return error.message.split('\n')[0]!.split('. ')[0]!;
}

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
    throw new UsageError(`${command.name}: ${argumentProblem(error as Error & { code?: string })}`, { cause: error });
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
    // The collector's own setting, so its environment (a unit's, a pod's) needs no --spool.
    spoolDir: resolve(typeof spoolOption === 'string' ? spoolOption : settingValue('spoolDir')),
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
