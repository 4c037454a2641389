import type { Readable } from 'node:stream';

/**
 * Reads and drops what is left of a refused request's body, for at most `maxMs`, before the
 * refusal is answered. A server that answers and closes while the client is still sending leaves
 * unread bytes in the socket, and the kernel then resets the connection — often before the client
 * has read the answer. Nothing is kept, so this costs no memory; the time bound keeps a slow or
 * endless sender from holding the request.
 */
export function discardRest(body: Readable, maxMs: number): Promise<void> {
  if (body.readableEnded || body.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      body.off('end', finish);
      body.off('close', finish);
      body.off('data', ignore);
      resolve();
    };
    const ignore = () => undefined;
    const timer = setTimeout(finish, maxMs);
    body.on('data', ignore);
    body.once('end', finish);
    body.once('close', finish);
    body.resume();
  });
}
