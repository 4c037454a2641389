/**
 * A TCP proxy on loopback in front of a queue server (RabbitMQ speaks AMQP, not HTTP, so the HTTP
 * fault proxy cannot stand there):
 * - `pass` forwards bytes both ways;
 * - `refuse` closes the port and cuts every open connection (connection refused);
 * - `blackhole` cuts open connections, then accepts new ones and forwards nothing on them;
 * - `freeze` is a broker that stops answering with its connections alive: open connections stay
 *   open, nothing moves either way (what arrives is held), new connections are accepted and get
 *   nothing; back to `pass`, what was held moves on, as when a stalled broker wakes up.
 * `cutNextReply()` arms a one-shot cut mid-confirm: after the client next sends something, the next
 * bytes the server answers are dropped and that connection is cut, so the server took the request
 * and the client never hears it was taken.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { anyFreePort } from './fault-proxy.js';

export type TcpFaultMode = 'pass' | 'refuse' | 'blackhole' | 'freeze';

/** One proxied connection: the client's socket, the server's, and bytes held while frozen. */
interface Link {
  client: Socket;
  upstream: Socket | undefined;
  heldForUpstream: Buffer[];
  heldForClient: Buffer[];
  clientSpoke: boolean;
}

export class TcpFaultProxy {
  mode: TcpFaultMode = 'pass';
  /** Connections cut by `cutNextReply`. */
  cuts = 0;
  private server: Server | undefined;
  private readonly links = new Set<Link>();
  private cutArmed = false;

  private constructor(
    readonly port: number,
    private readonly upstreamPort: number,
  ) {}

  /** `port`: listen there (it is listened on again after `refuse`); default: a free one. */
  static async start(upstreamPort: number, port?: number): Promise<TcpFaultProxy> {
    const proxy = new TcpFaultProxy(port ?? (await anyFreePort()), upstreamPort);
    await proxy.listen();
    return proxy;
  }

  async set(mode: TcpFaultMode): Promise<void> {
    const was = this.mode;
    this.mode = mode;
    if (mode === 'refuse' || mode === 'blackhole') this.cutAll();
    if (mode === 'pass' && was === 'freeze') this.thaw();
    if (mode === 'refuse' && this.server) {
      const server = this.server;
      this.server = undefined;
      await new Promise((resolve) => server.close(resolve));
    } else if (mode !== 'refuse' && was === 'refuse') {
      await this.listen();
    }
  }

  /** The next answer to a client that has sent something is dropped and its connection cut (once). */
  cutNextReply(): void {
    this.cutArmed = true;
    for (const link of this.links) link.clientSpoke = false;
  }

  async close(): Promise<void> {
    this.cutAll();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  private cutAll(): void {
    for (const link of this.links) {
      link.client.destroy();
      link.upstream?.destroy();
    }
    this.links.clear();
  }

  private thaw(): void {
    for (const link of this.links) {
      for (const chunk of link.heldForUpstream.splice(0)) link.upstream?.write(chunk);
      for (const chunk of link.heldForClient.splice(0)) link.client.write(chunk);
    }
  }

  private fromClient(link: Link, chunk: Buffer): void {
    if (this.mode === 'freeze' || this.mode === 'blackhole') {
      if (this.mode === 'freeze') link.heldForUpstream.push(chunk);
      return;
    }
    link.clientSpoke = true;
    link.upstream?.write(chunk);
  }

  private fromUpstream(link: Link, chunk: Buffer): void {
    if (this.mode === 'freeze') {
      link.heldForClient.push(chunk);
      return;
    }
    if (this.cutArmed && link.clientSpoke) {
      this.cutArmed = false;
      this.cuts += 1;
      link.client.destroy();
      link.upstream?.destroy();
      return;
    }
    link.client.write(chunk);
  }

  private listen(): Promise<void> {
    const server = createServer((client) => {
      const link: Link = { client, upstream: undefined, heldForUpstream: [], heldForClient: [], clientSpoke: false };
      this.links.add(link);
      const end = () => {
        this.links.delete(link);
        client.destroy();
        link.upstream?.destroy();
      };
      client.on('close', end);
      client.on('error', () => undefined);
      client.on('data', (chunk: Buffer) => this.fromClient(link, chunk));
      if (this.mode === 'blackhole') return;
      const upstream = connect(this.upstreamPort, '127.0.0.1');
      link.upstream = upstream;
      upstream.on('close', end);
      upstream.on('error', () => undefined);
      upstream.on('data', (chunk: Buffer) => this.fromUpstream(link, chunk));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }
}
