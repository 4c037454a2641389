/**
 * Ceiling for the benchmark: a bare Hono server on @hono/node-server that reads the whole request
 * body and answers 200 — no gunzip, no parsing, no storage. Whatever the collector does costs on
 * top of this. Run: `PORT=8001 node --import tsx test/bench/bare-hono.ts` (prints `listening`).
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { randomUUID } from 'node:crypto';

const app = new Hono();
app.post('/submit', async (c) => {
  await c.req.arrayBuffer();
  return c.text(`CrashID=bp-${randomUUID()}\n`);
});

serve({ fetch: app.fetch, port: Number(process.env['PORT'] ?? 8001), hostname: process.env['HOST'] ?? '127.0.0.1' }, () => {
  process.stdout.write('listening\n');
});
