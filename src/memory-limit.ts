/**
 * The memory the process may use, and the memory bounds that follow from it when they are not set
 * (INFLIGHT_MAX_BYTES, DRAIN_INFLIGHT_MAX_BYTES = `auto`): a container's limit (cgroup v1 or v2,
 * as Node reads it: `process.constrainedMemory()`), else the machine's memory.
 *
 * The figures behind the rules (docs/DEVELOPMENT.md, *Memory*; measured in real memory cgroups,
 * 32 Mozilla-sized ~24 MB reports posted at once, storage draining): peak RSS was the idle process
 * (~95 MiB) plus 2.3–2.7× the in-flight budget at 64–128 MiB and 1.3× at 512 MiB (refused bodies
 * are read and dropped, accepted ones are copied into the spool and read back to upload); at a
 * quarter of the limit it stayed under three quarters of it (512 MiB: 380 MiB; 1 GiB: 615 MiB),
 * where the old fixed 512 MiB budget had the kernel OOM-kill the process at 512 MiB. The largest
 * report the limits let in (gzipped, one 63 MiB dump) needs a budget over 96 MiB and ~370 MiB of
 * RSS: hence the floor, and the limit below which a start warns.
 */
import { totalmem } from 'node:os';

const MiB = 1024 * 1024;
/** A report at the size limits (one 63 MiB dump, gzipped) needs a budget over 96 MiB. */
const INFLIGHT_FLOOR = 128 * MiB;
/** More than this buys nothing the spool does not already give (the fixed default before). */
const INFLIGHT_CEILING = 512 * MiB;
const DRAIN_FLOOR = 64 * MiB;
const DRAIN_CEILING = 128 * MiB;
/** Below this a report at the size limits may not fit beside the process itself (measured: 352 MiB took one, 320 MiB did not). */
export const SMALLEST_MEMORY_LIMIT = 384 * MiB;

export interface MemoryLimit {
  bytes: number;
  source: 'cgroup' | 'machine';
}

export function memoryLimit(constrained = process.constrainedMemory?.() ?? 0, machine = totalmem()): MemoryLimit {
  return constrained > 0 && constrained < machine ? { bytes: constrained, source: 'cgroup' } : { bytes: machine, source: 'machine' };
}

const clamp = (value: number, low: number, high: number) => Math.round(Math.min(high, Math.max(low, value)));

/** INFLIGHT_MAX_BYTES=auto: a quarter of the limit, 128 MiB to 512 MiB. */
export function inflightBudgetFor(limitBytes: number): number {
  return clamp(limitBytes / 4, INFLIGHT_FLOOR, INFLIGHT_CEILING);
}

/** DRAIN_INFLIGHT_MAX_BYTES=auto: an eighth of the limit, 64 MiB to 128 MiB (one crash always goes, whatever its size). */
export function drainInflightFor(limitBytes: number): number {
  return clamp(limitBytes / 8, DRAIN_FLOOR, DRAIN_CEILING);
}
