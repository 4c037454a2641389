/**
 * What happens to a connection when Node's HTTP parser fails on it. Node's default writes a bare
 * `400` and destroys the socket at once, even when a request on it is still being answered: a
 * body longer than its Content-Length makes the parser read the extra bytes as a second request,
 * fail, and cut off the collector's own answer to the first. Here the answer in flight is written
 * first and the connection closed after it.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Node's own answers for parser errors (lib/_http_server.js), for connections with nothing in flight. */
function defaultAnswer(code: string | undefined): string {
  const status =
    code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
    : code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW' ? '413 Payload Too Large'
    : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout'
    : '400 Bad Request';
  return `HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`;
}

export function answerInFlightBeforeClientErrors(server: Server): void {
  const inFlight = new WeakMap<Socket, { request: IncomingMessage; response: ServerResponse }>();
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    inFlight.set(socket, { request, response });
    response.once('close', () => {
      if (inFlight.get(socket)?.response === response) inFlight.delete(socket);
    });
  });

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    const current = inFlight.get(socket);
    // The request's body was read in full: what failed is whatever followed it. Stop reading, let
    // its answer go out, then close.
    if (current && current.request.complete && !current.response.writableFinished && !socket.destroyed) {
      socket.pause();
      if (!current.response.headersSent) current.response.setHeader('Connection', 'close');
      else current.response.once('finish', () => socket.end());
      return;
    }
    // As Node's default: answer only if nothing of another answer was written yet.
    if (socket.writable && !(current && current.response.headersSent)) socket.write(defaultAnswer(error.code));
    socket.destroy();
  });
}
