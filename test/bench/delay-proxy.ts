/**
 * A TCP proxy in front of the S3 server for the benchmark: it adds latency (a cloud region's
 * round trip) and makes outages on demand.
 *
 * - Every chunk is passed on `DELAY_MS / 2` after it arrived, in each direction, so a request and
 *   its answer take DELAY_MS longer, as over a longer network path; chunks keep their order and
 *   are not held behind each other (bandwidth is unchanged).
 * - SIGUSR1 starts an outage: open connections are reset and new ones are reset on arrival (as a
 *   storage endpoint that went away); SIGUSR2 ends it.
 *
 * Run: `UPSTREAM=127.0.0.1:7480 DELAY_MS=50 PORT=7600 node --import tsx test/bench/delay-proxy.ts`
 * (prints `listening`).
 */
import { connect, createServer, type Socket } from 'node:net';

const [upstreamHost, upstreamPort] = (process.env['UPSTREAM'] ?? '127.0.0.1:7480').split(':') as [string, string];
const oneWayMs = Number(process.env['DELAY_MS'] ?? 0) / 2;
const open = new Set<Socket>();
let down = false;

/** Passes `from`'s bytes and end to `to`, each `oneWayMs` late. */
function relay(from: Socket, to: Socket): void {
  const later = (action: () => void) => (oneWayMs > 0 ? setTimeout(action, oneWayMs) : action());
  from.on('data', (chunk: Buffer) => later(() => to.destroyed || to.write(chunk)));
  from.on('end', () => later(() => to.destroyed || to.end()));
}

const server = createServer((client) => {
  if (down) {
    client.resetAndDestroy();
    return;
  }
  const upstream = connect(Number(upstreamPort), upstreamHost);
  for (const socket of [client, upstream]) {
    open.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      open.delete(socket);
      (socket === client ? upstream : client).destroy();
    });
  }
  relay(client, upstream);
  relay(upstream, client);
});

process.on('SIGUSR1', () => {
  down = true;
  for (const socket of open) socket.resetAndDestroy();
});
process.on('SIGUSR2', () => {
  down = false;
});

server.listen(Number(process.env['PORT'] ?? 7600), process.env['HOST'] ?? '127.0.0.1', () => process.stdout.write('listening\n'));
