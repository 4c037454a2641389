/**
 * How a crash is kept in the spool: its dumps as they came, or — when it came gzipped and is smaller
 * that way — its body as sent with the dumps as places in it (the drainer inflates it to upload).
 * Also what memory can be handed to the writer thread rather than copied.
 */
import type { Crash } from '../../crash.js';
import type { DumpToStore } from './store.js';

const ownsItsMemory = (data: Buffer): boolean =>
  data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;

/** What of a crash goes to the writer thread, and the memory it may take over instead of copying. */
export interface CrashToStore {
  dumps: DumpToStore[];
  sentGzip?: Buffer;
  /** Bytes of dumps or body: what goes into the spool file besides the raw crash. */
  storedBytes: number;
  transfer: ArrayBuffer[];
}

/**
 * The gzipped body as sent, with the dumps as places in it, when that is smaller than the dumps
 * (Crashpad's ~200 KB reports gzip to about a fifth, and every byte spooled is written twice);
 * else the dumps. Memory that a buffer alone fills (not a slice of Node's shared pools or of a
 * socket read) is handed over to the writer thread: after `append` it is empty on this side.
 */
export function crashToStore(crash: Crash): CrashToStore {
  const dumpBytes = crash.dumps.reduce((sum, dump) => sum + dump.data.length, 0);
  const sent = crash.sentGzip;
  if (sent && sent.length < dumpBytes && crash.dumps.every((dump) => dump.offset !== undefined)) {
    const body = ownsItsMemory(sent) ? sent : Buffer.from(sent.buffer.slice(sent.byteOffset, sent.byteOffset + sent.length));
    return {
      dumps: crash.dumps.map((dump) => ({ name: dump.name, offset: dump.offset!, length: dump.data.length })),
      sentGzip: body,
      storedBytes: body.length,
      transfer: [body.buffer as ArrayBuffer],
    };
  }
  const owned = new Set<ArrayBuffer>();
  for (const { data } of crash.dumps) if (ownsItsMemory(data)) owned.add(data.buffer as ArrayBuffer);
  return { dumps: crash.dumps.map(({ name, data }) => ({ name, data })), storedBytes: dumpBytes, transfer: [...owned] };
}
