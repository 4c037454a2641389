import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Closes connections that sent nothing for the server's idle timeout — but only after the event
 * loop has read what is waiting. In a loop turn timers run before I/O, so after the process was
 * paused (SIGSTOP, a frozen VM, a long GC) the idle timer fires before the bytes that arrived during
 * the pause are read, and Node would reset a client that never stopped sending. Here the decision
 * waits for the I/O phase: a socket that read anything meanwhile is not idle (the read re-armed its
 * timer); one that read nothing is closed, as Node would have.
 */
export function closeIdleConnectionsAfterIo(server: Server): void {
  // A 'timeout' listener on the server replaces Node's own destroy-on-timeout.
  server.on('timeout', (socket: Socket) => {
    const bytesRead = socket.bytesRead;
    setImmediate(() => {
      if (!socket.destroyed && socket.bytesRead === bytesRead) socket.destroy();
    });
  });
}
