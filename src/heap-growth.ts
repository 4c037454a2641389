/**
 * How far V8 lets the heap grow before its next full garbage collection.
 *
 * V8 counts the bytes of Buffers (request bodies, their inflated forms) toward the limit that
 * starts a full collection, and after each one sets that limit at a factor of the live heap. The
 * collector's live heap is small (~15 MB: the spool is in SQLite) and ~200 KB reports pass ~100 MB
 * of short-lived Buffers a second through it. Once V8 has picked a factor of 1.3–1.6 (not in every
 * run), that means a full collection every 60–250 ms, each marking on every core (measured: 22–40
 * in 10 s at ~400 reports/s, over a quarter of the process's CPU in V8's marking threads). Those
 * bytes are already bounded by INFLIGHT_MAX_BYTES and mostly die young; a factor of 4 (V8's own
 * largest) lets them.
 */
import { setFlagsFromString } from 'node:v8';

const FLAG = '--heap-growing-percent';
/** Factor 4: the largest V8 chooses by itself for a heap with memory to spare. */
const GROWING_PERCENT = 300;

/** Sets the factor unless node was started with one of its own (`node --heap-growing-percent=N`). */
export function growHeapForBuffers(execArgv: readonly string[] = process.execArgv): boolean {
  // V8 reads `_` in a flag's name as `-`.
  if (execArgv.some((arg) => arg.replaceAll('_', '-').startsWith(`${FLAG}=`))) return false;
  // A V8 flag read at every full collection, so setting it after start-up takes effect.
  setFlagsFromString(`${FLAG}=${GROWING_PERCENT}`);
  return true;
}
