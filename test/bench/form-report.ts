/**
 * How the benchmark's peers (naive-peer.ts, antenna-peer.ts) read a report: the whole body
 * buffered, gunzipped in one piece, parsed with the platform's `Request.formData()`.
 */
import type { Context } from 'hono';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

const gunzipAsync = promisify(gunzip);

export async function readFormReport(c: Context): Promise<{ annotations: Record<string, string>; dumps: [string, Buffer][] }> {
  let body = Buffer.from(await c.req.arrayBuffer());
  if (/gzip/i.test(c.req.header('content-encoding') ?? '')) body = await gunzipAsync(body);
  const form = await new Request('http://peer.invalid/submit', {
    method: 'POST',
    headers: { 'content-type': c.req.header('content-type') ?? '' },
    body,
  }).formData();
  const annotations: Record<string, string> = {};
  const dumps: [string, Buffer][] = [];
  for (const [name, value] of form) {
    if (typeof value === 'string') annotations[name] = value;
    else dumps.push([name, Buffer.from(await value.arrayBuffer())]);
  }
  return { annotations, dumps };
}
