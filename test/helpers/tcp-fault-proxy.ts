/**
 * A TCP proxy on loopback in front of a queue server (RabbitMQ speaks AMQP, not HTTP, so the HTTP
 * fault proxy cannot stand there): `pass` forwards bytes both ways; `refuse` closes the port and
 * cuts every open connection (connection refused); `blackhole` accepts connections and forwards
 * nothing in either direction, for as long as it lasts.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export type TcpFaultMode = 'pass' | 'refuse' | 'blackhole';

export class TcpFaultProxy {
  mode: TcpFaultMode = 'pass';
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly upstreamPort: number,
  ) {}

  static async start(upstreamPort: number): Promise<TcpFaultProxy> {
    const probe = createServer();
    const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)));
    await new Promise((resolve) => probe.close(resolve));
    const proxy = new TcpFaultProxy(port, upstreamPort);
    await proxy.listen();
    return proxy;
  }

  async set(mode: TcpFaultMode): Promise<void> {
    const was = this.mode;
    this.mode = mode;
    if (mode !== 'pass') this.cutAll();
    if (mode === 'refuse' && this.server) {
      const server = this.server;
      this.server = undefined;
      await new Promise((resolve) => server.close(resolve));
    } else if (mode !== 'refuse' && was === 'refuse') {
      await this.listen();
    }
  }

  async close(): Promise<void> {
    this.cutAll();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  private cutAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private listen(): Promise<void> {
    const server = createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => undefined);
      if (this.mode === 'blackhole') return;
      const upstream = connect(this.upstreamPort, '127.0.0.1');
      this.sockets.add(upstream);
      upstream.on('close', () => {
        this.sockets.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }
}
