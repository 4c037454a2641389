/**
 * The power-loss run from the command line, for long runs and for measuring other durability modes:
 *     npm run -s build && node --import tsx test/power-loss/cli.ts [--cuts N (200)] [--durability full|normal]
 *         [--clients N (4)] [--seed N] [--storage file|s3|layer] [--spool-subdir NAME]
 *         [--mode drop|torn] [--trigger time|writes|'checkpoint writes'|'start-up writes'] [--json FILE]
 * Progress on stderr; then `power cuts N: acknowledged A, stored S, lost L` and a summary on stdout.
 * Exit status 0 when nothing acknowledged was lost and every spool checked out, 1 otherwise
 * (with `--durability normal`, losses are expected: it reports them and exits 0 unless the spool
 * was damaged or a collector could not start).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fuseSkipReason } from './layer.js';
import { runPowerLoss, type Trigger } from './harness.js';

function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    process.stderr.write(`power-loss: --${name} must be a non-negative integer, got '${text}'\n`);
    process.exit(2);
  }
  return value;
}

const { values } = parseArgs({
  options: {
    cuts: { type: 'string' },
    clients: { type: 'string' },
    seed: { type: 'string' },
    durability: { type: 'string' },
    storage: { type: 'string' },
    'spool-subdir': { type: 'string' },
    mode: { type: 'string' },
    trigger: { type: 'string' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write(
    'usage: node --import tsx test/power-loss/cli.ts [--cuts N (200)] [--durability full|normal] [--clients N (4)]\n' +
      '                                              [--seed N] [--storage file|s3|layer] [--spool-subdir NAME] [--json FILE]\n' +
      '  --mode drop|torn     every cut in this mode (default: either, at random)\n' +
      '  --trigger time|writes|checkpoint writes|start-up writes   every cut by this trigger (default: at random)\n' +
      '  --storage layer      file:// storage on the layer too (<mount>/crashes): the cut hits it as well\n' +
      '  --spool-subdir NAME  SPOOL_DIR is <mount>/NAME, created by the collector (default: the mount itself)\n',
  );
  process.exit(0);
}
const durability = values.durability ?? 'full';
if (durability !== 'full' && durability !== 'normal') {
  process.stderr.write(`power-loss: --durability must be full or normal, got '${durability}'\n`);
  process.exit(2);
}
const storage = values.storage ?? 'file';
if (storage !== 'file' && storage !== 's3' && storage !== 'layer') {
  process.stderr.write(`power-loss: --storage must be file, s3 or layer, got '${storage}'\n`);
  process.exit(2);
}
const mode = values.mode;
if (mode !== undefined && mode !== 'drop' && mode !== 'torn') {
  process.stderr.write(`power-loss: --mode must be drop or torn, got '${mode}'\n`);
  process.exit(2);
}
const TRIGGERS: Trigger[] = ['time', 'writes', 'checkpoint writes', 'start-up writes'];
const trigger = values.trigger as Trigger | undefined;
if (trigger !== undefined && !TRIGGERS.includes(trigger)) {
  process.stderr.write(`power-loss: --trigger must be one of ${TRIGGERS.join(', ')}; got '${trigger}'\n`);
  process.exit(2);
}
const skip = fuseSkipReason();
if (skip) {
  process.stderr.write(`power-loss: ${skip}\n`);
  process.exit(2);
}

const result = await runPowerLoss({
  cuts: Math.max(1, positiveInteger('cuts', values.cuts, 200)),
  clients: Math.max(1, positiveInteger('clients', values.clients, 4)),
  ...(values.seed === undefined ? {} : { seed: positiveInteger('seed', values.seed, 0) }),
  durability,
  storage,
  ...(values['spool-subdir'] ? { spoolSubdir: values['spool-subdir'] } : {}),
  ...(mode ? { mode } : {}),
  ...(trigger ? { trigger } : {}),
  progress: (line) => process.stderr.write(`power-loss: ${line}\n`),
});
const damaged = result.perCut.filter((record) => !['ok', 'no spool yet'].includes(record.integrity));
const summary = {
  seconds: Math.round(result.durationMs / 100) / 10,
  seed: result.seed,
  durability: result.durability,
  cuts: result.cuts,
  places: result.places,
  modes: result.modes,
  triggers: result.triggers,
  acknowledged: result.acknowledged,
  lost: result.lost,
  lostAckedAfterCut: result.lostCrashes.filter((crash) => crash.ackedAfterCut).length,
  cutsWithLosses: new Set(result.lostCrashes.map((crash) => crash.round)).size,
  damagedSpools: damaged.map((record) => ({ round: record.round, integrity: record.integrity })),
  failedStarts: result.failedStarts,
  unexpected: result.unexpected.length,
  kept: result.lost > 0 || result.failedStarts.length > 0 ? { backing: result.backingDirs, storage: result.storageDir } : undefined,
};
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
const clean = damaged.length === 0 && result.failedStarts.length === 0 && result.unexpected.length === 0;
process.exit(clean && (result.lost === 0 || durability === 'normal') ? 0 : 1);
