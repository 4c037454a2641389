import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { parseResponse, postChunked, postTarget } from './crashpad-post.js';
import { freePort } from '../helpers/collector-process.js';

/** A node:http server (a real HTTP parser) that hands each request to `answer`. */
async function withServer(answer: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void, run: (port: number) => Promise<void>, host = '127.0.0.1') {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => answer(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  try {
    await run((server.address() as AddressInfo).port);
  } finally {
    server.close();
  }
}

const target = (port: number) => ({
  host: '127.0.0.1',
  port,
  hostHeader: `127.0.0.1:${port}`,
  path: '/submit?product=X',
  headers: { 'Content-Type': 'multipart/form-data; boundary=b', 'Content-Encoding': 'gzip' },
});

test('a report goes out chunked, without Content-Length, byte for byte; a chunked answer is read whole', async () => {
  const body = randomBytes(40_000);
  let seen: { headers: IncomingMessage['headers']; url: string | undefined; body: Buffer } | undefined;
  await withServer(
    (req, received, res) => {
      seen = { headers: req.headers, url: req.url, body: received };
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('CrashID=bp-');
      res.end('abc\n');
    },
    async (port) => {
      const answer = await postChunked(target(port), body, 16 * 1024, 5_000);
      assert.deepEqual(answer, { status: 200, body: 'CrashID=bp-abc\n' });
    },
  );
  assert.ok(seen);
  assert.equal(seen.url, '/submit?product=X');
  assert.equal(seen.headers['transfer-encoding'], 'chunked');
  assert.equal(seen.headers['content-length'], undefined);
  assert.equal(seen.headers['content-encoding'], 'gzip');
  assert.equal(seen.headers['connection'], 'close');
  assert.ok(seen.body.equals(body));
});

test('an answer with Content-Length is read to its length; its status is kept', async () => {
  await withServer(
    (_req, _body, res) => {
      res.writeHead(413, { 'Content-Length': '9' });
      res.end('too large');
    },
    async (port) => assert.deepEqual(await postChunked(target(port), Buffer.from('x'), 16, 5_000), { status: 413, body: 'too large' }),
  );
});

test('no server: the error code comes back, as the load counts failures by it', async () => {
  const port = await freePort();
  await assert.rejects(postChunked(target(port), Buffer.from('x'), 16, 5_000), { code: 'ECONNREFUSED' });
});

test('a response without a complete head is no answer', () => {
  assert.equal(parseResponse(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n')), undefined);
  assert.equal(parseResponse(Buffer.from('garbage\r\n\r\n')), undefined);
  assert.deepEqual(parseResponse(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n')), { status: 200, body: 'abcde' });
});

/** Whether this machine has an IPv6 loopback to listen on (a container may have IPv6 turned off). */
async function hasIpv6Loopback(): Promise<boolean> {
  const probe = createServer();
  return new Promise((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(0, '::1', () => probe.close(() => resolve(true)));
  });
}

test('an IPv6 base URL: connects to the address without brackets, sends the Host header with them', async (t) => {
  if (!(await hasIpv6Loopback())) {
    t.skip('no IPv6 loopback on this machine');
    return;
  }
  let seenHost: string | undefined;
  let serverPort = 0;
  await withServer(
    (req, _body, res) => {
      seenHost = req.headers.host;
      res.writeHead(200, { 'Content-Length': '3' });
      res.end('ok\n');
    },
    async (port) => {
      serverPort = port;
      const ipv6 = postTarget(new URL(`http://[::1]:${port}`), '/submit', {});
      assert.equal(ipv6.host, '::1');
      assert.equal(ipv6.hostHeader, `[::1]:${port}`);
      assert.deepEqual(await postChunked(ipv6, Buffer.from('x'), 1024, 5_000), { status: 200, body: 'ok\n' });
    },
    '::1',
  );
  assert.equal(seenHost, `[::1]:${serverPort}`);
});
