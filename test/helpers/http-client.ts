import { request } from 'node:http';
import type { Report } from './multipart.js';

export interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface SendOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  /** Send without Content-Length, in pieces of this size (chunked transfer encoding, like Crashpad). */
  chunkSize?: number;
  timeoutMs?: number;
}

/** Sends `body` over a fresh connection (no keep-alive), as crash clients do. */
export function send(baseUrl: string, body: Buffer | undefined, options: SendOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(options.path ?? '/submit', baseUrl);
    const headers: Record<string, string> = { Connection: 'close', ...options.headers };
    if (body && options.chunkSize === undefined) headers['Content-Length'] = String(body.length);
    const req = request(url, { method: options.method ?? 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(options.timeoutMs ?? 60_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (body && options.chunkSize !== undefined) {
      for (let at = 0; at < body.length; at += options.chunkSize) req.write(body.subarray(at, at + options.chunkSize));
      req.end();
    } else {
      req.end(body);
    }
  });
}

/** Posts a report the way its client style does: Crashpad/Electron gzip and chunked, with the URL query. */
export function postReport(baseUrl: string, report: Report, extraHeaders: Record<string, string> = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'Content-Type': report.contentType, 'User-Agent': `test-${report.style}`, ...extraHeaders };
  if (report.gzip) headers['Content-Encoding'] = 'gzip';
  const chunked = report.style === 'crashpad' || report.style === 'electron';
  return send(baseUrl, report.body, {
    path: `/submit${report.query}`,
    headers,
    ...(chunked ? { chunkSize: 16 * 1024 } : {}),
  });
}

export function crashIdFrom(answer: Answer): string {
  const match = /^CrashID=bp-([0-9a-f-]+)\n$/.exec(answer.body);
  if (answer.status !== 200 || !match) throw new Error(`not accepted: ${answer.status} ${answer.body}`);
  return match[1]!;
}
