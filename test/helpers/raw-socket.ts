import { connect, type Socket } from 'node:net';

export interface RawExchange {
  /** Everything the server sent before closing (or before `waitMs` ran out). */
  response: string;
  /** True when the server closed the connection. */
  closedByServer: boolean;
  /** Milliseconds from connect to the server closing (or to the end of waiting). */
  ms: number;
}

/**
 * Talks HTTP by hand, for what a well-behaved client library will not send: bodies longer or
 * shorter than their Content-Length, headers dribbled byte by byte, uploads that stall.
 * `script` writes to the socket; the exchange ends when the server closes or after `waitMs`.
 */
export function rawExchange(port: number, script: (socket: Socket) => void | Promise<void>, waitMs = 10_000): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let response = '';
    let settled = false;
    const finish = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ response, closedByServer, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => (response += text));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? finish(true) : reject(error)));
    socket.on('connect', () => {
      Promise.resolve(script(socket)).catch(() => finish(true));
    });
  });
}

export function httpHead(path: string, headers: Record<string, string | number>): string {
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
