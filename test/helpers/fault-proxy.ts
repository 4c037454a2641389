/**
 * An HTTP proxy on loopback between the collector and the real S3 server (Ceph RGW) that injects
 * the faults real storage produces, switchable at any moment:
 * - `pass`: forwards everything;
 * - `refuse`: the port is closed (connection refused), open connections are cut;
 * - `blackhole`: accepts connections and requests, never answers (now or after healing);
 * - `stall`: forwards, then stops the answer after `afterBytes` bytes, forever;
 * - `cut`: forwards, then closes the connection after `afterBytes` bytes of the answer;
 * - `flaky`: answers a share of requests itself with S3's `500 InternalError` or `503 SlowDown`
 *   XML bodies after up to `maxDelayMs`; the rest is forwarded;
 * - `latency`: forwards after `ms`.
 * - `stored-then-fail`: forwards; a share of the requests storage carried out (a 2xx answer) are
 *   answered `500 InternalError` instead: the object is stored, the client is told it is not.
 * - `rewrite`: forwards the request (its body changed by `request`, when given) and answers with
 *   what `answer` makes of the real answer: for servers that answer nonsense (a queue's reply that
 *   names entries never sent, or none at all). Either may throw to send the request on unchanged.
 * The Host header is forwarded unchanged, so SigV4 signatures made for the proxy verify at RGW.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { seededRandom } from './random.js';

export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'refuse' }
  | { kind: 'blackhole' }
  | { kind: 'stall'; afterBytes: number }
  | { kind: 'cut'; afterBytes: number }
  | { kind: 'flaky'; failRatio: number; maxDelayMs?: number }
  | { kind: 'latency'; ms: number }
  | { kind: 'stored-then-fail'; failRatio: number }
  | { kind: 'rewrite'; request?: (body: Buffer) => Buffer; answer?: (answer: RawAnswer, sentBody: Buffer) => RawAnswer };

/** A whole answer as the proxy rewrites it. */
export interface RawAnswer {
  status: number;
  body: Buffer;
}

/** Requests remembered: a long run (a campaign's hour) sends hundreds of thousands. */
const MAX_REQUESTS_KEPT = 50_000;

const S3_ERRORS = [
  { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' },
  { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' },
];

export class FaultProxy {
  mode: FaultMode = { kind: 'pass' };
  /** Requests seen, by what the proxy did with them. */
  readonly counts: Record<string, number> = {};
  /** Every request's method and path as it arrived, oldest first (to see what is in flight); the newest MAX_REQUESTS_KEPT. */
  readonly requests: { method: string; path: string }[] = [];
  private server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly random = seededRandom(20261201);

  private constructor(
    readonly port: number,
    private readonly upstream: URL,
  ) {
    this.server = this.makeServer();
  }

  /** `port`: listen there (it is listened on again after `refuse`); default: a free one. */
  static async start(upstreamUrl: string, port?: number): Promise<FaultProxy> {
    const proxy = new FaultProxy(port ?? (await anyFreePort()), new URL(upstreamUrl));
    await proxy.listen();
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async set(mode: FaultMode): Promise<void> {
    const wasRefusing = this.mode.kind === 'refuse';
    this.mode = mode;
    if (mode.kind === 'refuse' && !wasRefusing) {
      const closed = new Promise((resolve) => this.server.close(resolve));
      for (const socket of this.sockets) socket.destroy();
      await closed;
    } else if (mode.kind !== 'refuse' && wasRefusing) {
      this.server = this.makeServer();
      await this.listen();
    }
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (this.server.listening) await new Promise((resolve) => this.server.close(resolve));
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  private makeServer(): Server {
    const server = createServer({ requestTimeout: 0, keepAliveTimeout: 60_000 }, (req, res) => this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    return server;
  }

  private count(what: string): void {
    this.counts[what] = (this.counts[what] ?? 0) + 1;
  }

  /** Told of every request as it arrives (e.g. to act at the moment an upload starts). */
  onRequest: ((method: string, path: string) => void) | undefined;

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests.push({ method: req.method ?? '', path: req.url ?? '' });
    if (this.requests.length > MAX_REQUESTS_KEPT) this.requests.splice(0, this.requests.length - MAX_REQUESTS_KEPT / 2);
    this.onRequest?.(req.method ?? '', req.url ?? '');
    const mode = this.mode;
    switch (mode.kind) {
      case 'blackhole':
        this.count('blackholed');
        req.resume();
        return;
      case 'flaky': {
        if (this.random() < mode.failRatio) {
          // S3 can take its time to say SlowDown; what is forwarded is not delayed.
          const delay = Math.floor(this.random() * (mode.maxDelayMs ?? 0));
          this.count('failed');
          const error = S3_ERRORS[Math.floor(this.random() * S3_ERRORS.length)]!;
          req.resume();
          req.on('end', () => setTimeout(() => this.answerS3Error(res, error), delay));
          return;
        }
        this.forward(req, res);
        return;
      }
      case 'latency':
        setTimeout(() => this.forward(req, res), mode.ms);
        return;
      case 'rewrite':
        this.rewrite(req, res, mode);
        return;
      default:
        this.forward(req, res);
    }
  }

  private answerS3Error(res: ServerResponse, error: (typeof S3_ERRORS)[number]): void {
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${error.code}</Code><Message>${error.message}</Message><RequestId>fault-proxy</RequestId></Error>`;
    res.writeHead(error.status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const mode = this.mode;
    const upstream = request(
      { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (mode.kind === 'stored-then-fail' && (answer.statusCode ?? 500) < 300 && this.random() < mode.failRatio) {
          this.count('stored then failed');
          answer.resume();
          answer.on('end', () => this.answerS3Error(res, S3_ERRORS[1]!));
          return;
        }
        if (mode.kind !== 'stall' && mode.kind !== 'cut') {
          this.count('forwarded');
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          return;
        }
        // The raw answer, cut or stalled after `afterBytes`.
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const head = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage}`];
          for (let i = 0; i < answer.rawHeaders.length; i += 2) head.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
          const raw = Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), ...chunks]);
          const socket = res.socket!;
          socket.write(raw.subarray(0, Math.min(mode.afterBytes, raw.length - 1)));
          if (mode.kind === 'cut') {
            this.count('cut');
            socket.destroy();
          } else {
            this.count('stalled');
          }
        });
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  }

  /** Forwards the whole request, rewritten, and answers with the rewritten whole answer. */
  private rewrite(req: IncomingMessage, res: ServerResponse, mode: Extract<FaultMode, { kind: 'rewrite' }>): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const sent = Buffer.concat(chunks);
      const body = attempt(() => mode.request?.(sent), sent) ?? sent;
      const headers = { ...req.headers, 'content-length': String(body.length) };
      const upstream = request({ host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers }, (answer) => {
        const answered: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => answered.push(chunk));
        answer.on('end', () => {
          const real = { status: answer.statusCode ?? 502, body: Buffer.concat(answered) };
          const given = attempt(() => mode.answer?.(real, sent), real) ?? real;
          this.count(given === real ? 'forwarded' : 'rewritten');
          const contentType = answer.headers['content-type'] ?? 'application/octet-stream';
          res.writeHead(given.status, { 'Content-Type': contentType, 'Content-Length': given.body.length });
          res.end(given.body);
        });
      });
      upstream.on('error', () => res.socket?.destroy());
      upstream.end(body);
    });
  }
}

export async function anyFreePort(): Promise<number> {
  const probe = createServer();
  const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)));
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** What `make` returns, or `fallback` when it throws (a request the rewrite does not understand). */
function attempt<T>(make: () => T | undefined, fallback: T): T {
  try {
    return make() ?? fallback;
  } catch {
    return fallback;
  }
}
