/**
 * The load generator's HTTP client: one report over a fresh connection, sent chunked without
 * Content-Length as Crashpad sends it, written straight to a socket.
 *
 * Why not node:http: on this 2-core machine the generator shares the cores with the server it
 * measures, and node:http's client cost ~300–400 µs of CPU per report (as much as the collector's
 * own HTTP thread spends on a ~5 KB one), so it slowed every server by taking their CPU, and the
 * bare-Hono ceiling measured the generator. Writing the request by hand costs about half of that.
 */
import { connect } from 'node:net';

export interface PostAnswer {
  status: number;
  body: string;
}

export interface PostTarget {
  /** Where to connect (an IPv6 address without brackets). */
  host: string;
  port: number;
  /** The Host header (`127.0.0.1:8000`, `[::1]:8000`). */
  hostHeader: string;
  /** Path and query, e.g. `/submit?product=X`. */
  path: string;
  headers: Record<string, string>;
}

/** Where a post to `base` (http://host:port, IPv6 hosts in brackets) connects, and its headers. */
export function postTarget(base: URL, path: string, headers: Record<string, string>): PostTarget {
  return { host: base.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(base.port || 80), hostHeader: base.host, path, headers };
}

/** Request head and chunked body, as the bytes that go on the wire. */
export function chunkedRequest(target: PostTarget, body: Buffer, chunkBytes: number): Buffer[] {
  const headerLines = Object.entries(target.headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  const parts: Buffer[] = [
    Buffer.from(`POST ${target.path} HTTP/1.1\r\nHost: ${target.hostHeader}\r\n${headerLines}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n`, 'latin1'),
  ];
  for (let at = 0; at < body.length; at += chunkBytes) {
    const chunk = body.subarray(at, at + chunkBytes);
    parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, Buffer.from('\r\n', 'latin1'));
  }
  parts.push(Buffer.from('0\r\n\r\n', 'latin1'));
  return parts;
}

/** A whole response (the server closed after it), or undefined while its head is incomplete. */
export function parseResponse(bytes: Buffer): PostAnswer | undefined {
  const headEnd = bytes.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const [statusLine = '', ...headerLines] = bytes.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!status) return undefined;
  const header = (name: string) => headerLines.find((line) => line.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
  let body = bytes.subarray(headEnd + 4);
  if (/chunked/i.test(header('transfer-encoding') ?? '')) {
    body = dechunk(body);
  } else {
    const length = header('content-length');
    if (length !== undefined) body = body.subarray(0, Number(length));
  }
  return { status: Number(status[1]), body: body.toString('utf8') };
}

function dechunk(encoded: Buffer): Buffer {
  const pieces: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = encoded.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(encoded.subarray(at, lineEnd).toString('latin1'), 16);
    if (!(size > 0)) break;
    pieces.push(encoded.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(pieces);
}

/**
 * Posts and resolves with the answer once the server has closed the connection. A server that
 * answers and resets before reading the whole body (an early 413) still yields its answer; an
 * error before any answer rejects with the socket's error (its `code`, e.g. ECONNREFUSED).
 */
export function postChunked(target: PostTarget, body: Buffer, chunkBytes: number, timeoutMs: number): Promise<PostAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(target.port, target.host);
    const received: Buffer[] = [];
    let settled = false;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      const answer = parseResponse(Buffer.concat(received));
      if (answer) resolve(answer);
      else reject(error ?? new Error('connection closed before a complete answer'));
    };
    socket.setTimeout(timeoutMs, () => settle(new Error('request timed out')));
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('end', () => settle());
    socket.on('error', (error) => settle(error));
    socket.on('close', () => settle());
    socket.cork();
    for (const part of chunkedRequest(target, body, chunkBytes)) socket.write(part);
    socket.uncork();
  });
}
