/**
 * The collector's listening sockets: the public HTTP server (with the timeouts the internet needs)
 * and, when METRICS_PORT is set, the metrics server. A socket that cannot be opened is a
 * CannotStart naming the setting.
 */
import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CannotStart } from '../cannot-start.js';
import type { Config } from '../config.js';
import { answerInFlightBeforeClientErrors } from '../http/client-errors.js';
import { closeIdleConnectionsAfterIo } from '../http/idle-connections.js';

/** What answers the requests: a Hono app's `fetch`. */
type Fetch = Parameters<typeof createAdaptorServer>[0]['fetch'];

export interface Servers {
  server: Server;
  metricsServer: Server | undefined;
  address: AddressInfo;
  /** Where /metrics is served (the public port when METRICS_PORT is unset). */
  metricsPort: number;
}

export async function startServers(config: Config, fetch: Fetch, metricsFetch: Fetch | undefined): Promise<Servers> {
  const server = createAdaptorServer({
    fetch,
    // Load-balancer checks (HAProxy's default is HTTP/1.0 without Host) and old clients send no
    // Host header: answered normally, with this name in the request URL.
    hostname: 'localhost',
    serverOptions: {
      requireHostHeader: false,
      headersTimeout: config.headersTimeoutSeconds * 1000,
      requestTimeout: config.requestTimeoutSeconds * 1000,
      keepAliveTimeout: 5_000,
      // How often Node checks the two timeouts above (default 30 s would let slowloris linger).
      connectionsCheckingInterval: 1_000,
    },
  }) as Server;
  // A connection idle this long (a stalled upload) is destroyed, freeing what its request held.
  server.timeout = config.idleTimeoutSeconds * 1000;
  closeIdleConnectionsAfterIo(server);
  answerInFlightBeforeClientErrors(server);
  await listen(server, config.port, config.host, 'PORT');
  const metricsServer =
    config.metricsPort === undefined || metricsFetch === undefined
      ? undefined
      : (createAdaptorServer({ fetch: metricsFetch, hostname: 'localhost', serverOptions: { requireHostHeader: false } }) as Server);
  if (metricsServer) await listen(metricsServer, config.metricsPort!, config.host, 'METRICS_PORT');
  const address = server.address() as AddressInfo;
  return { server, metricsServer, address, metricsPort: metricsServer ? (metricsServer.address() as AddressInfo).port : address.port };
}

/** Listens, or says in one line which setting keeps it from listening (CannotStart). */
function listen(server: Server, port: number, host: string, portSetting: 'PORT' | 'METRICS_PORT'): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => reject(listenProblem(error, port, host, portSetting));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

function listenProblem(error: NodeJS.ErrnoException, port: number, host: string, portSetting: string): Error {
  switch (error.code) {
    case 'EADDRINUSE':
      return new CannotStart(portSetting, `${host}:${port} is in use (EADDRINUSE); stop what listens there or set ${portSetting} to a free port`);
    case 'EACCES':
      return new CannotStart(portSetting, `no permission to listen on ${host}:${port} (EACCES); ports below 1024 need privileges`);
    case 'EADDRNOTAVAIL':
      return new CannotStart('HOST', `${host} is not an address of this machine (EADDRNOTAVAIL); set HOST to one of its addresses, or 0.0.0.0 for all`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return new CannotStart('HOST', `${host} does not resolve (${error.code}); set HOST to an address of this machine, or 0.0.0.0 for all`);
    default:
      return error;
  }
}
