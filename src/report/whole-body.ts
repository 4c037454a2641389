import type { Readable } from 'node:stream';

export type BodyStart =
  /** The body ended within the bound: all of it. */
  | { whole: Buffer }
  /** It did not: the chunks read so far; the rest is still in the (paused) stream. */
  | { head: Buffer[] };

/**
 * Reads a request body whole if it ends within `maxBytes`, so a small report is parsed in one
 * pass instead of through a chain of stream stages (which costs more CPU than the parsing itself).
 * A longer body is handed back as what was read so far, to be streamed from there on. `take`
 * accounts each chunk held (it may throw, e.g. the memory budget). Rejects with `onGone()` when the
 * body closes before its end. `maxBytes` 0 reads nothing: every body streams.
 */
export function readBodyStart(body: Readable, maxBytes: number, take: (bytes: number) => void, onGone: () => Error): Promise<BodyStart> {
  if (maxBytes === 0) return Promise.resolve({ head: [] });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const stop = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('close', onClose);
      body.off('error', onClose);
    };
    const onData = (chunk: Buffer) => {
      try {
        take(chunk.length);
      } catch (error) {
        stop();
        body.pause();
        reject(error);
        return;
      }
      chunks.push(chunk);
      bytes += chunk.length;
      if (bytes > maxBytes) {
        stop();
        body.pause();
        resolve({ head: chunks });
      }
    };
    const onEnd = () => {
      stop();
      resolve({ whole: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes) });
    };
    const onClose = () => {
      stop();
      reject(onGone());
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('close', onClose);
    body.once('error', onClose);
  });
}
