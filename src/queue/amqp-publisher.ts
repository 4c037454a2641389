/**
 * RabbitMQ (AMQP 0-9-1) via amqplib: each crash ID a persistent, mandatory message to the queue
 * through the default exchange, on a confirm channel — a crash counts as published only once the
 * broker confirmed its message (publisher confirms) and did not return it. A message that reaches
 * no queue (the queue was deleted) is returned and then confirmed all the same, so without
 * `mandatory` it would look published: it is a failure (`unroutable`). A nack (the queue is full
 * with `x-overflow: reject-publish`, or broke) is a failure of the queue, not of the crash.
 *
 * Every wait is bounded: connecting and opening the channel by the connect timeout, confirms by
 * the publish timeout, `close` by CLOSE_MS; a connection that does not close in time is cut, so a
 * broker that stops answering with its TCP connection alive holds nothing. A connection whose state
 * is unknown (a timeout) is dropped and made again when next needed.
 * Permissions: write on the default exchange for the queue; configure or read are not needed
 * (the queue is checked passively, never declared: its settings belong to the processor's side).
 */
import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import type { Socket } from 'node:net';
import type { Logger } from '../logger.js';
import { within } from '../within.js';
import { PublishError, type CrashPublisher, type EntryFailure, type PublishFailure, type PublishResult } from './publisher.js';

const AMQP_BATCH = 50;
/** The longest a connection may take to close before it is cut. */
const CLOSE_MS = 1000;
const REFUSED_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE']);

export interface AmqpOptions {
  /** amqp://user:password@host:port/vhost, without `?queue=`. */
  url: string;
  queue: string;
  connectMs: number;
  /** The longest a batch may wait for the broker's confirms. */
  timeoutMs: number;
  logger: Logger;
}

interface Link {
  connection: ChannelModel;
  channel: ConfirmChannel;
  /** Crash IDs of messages the broker returned (routed to no queue), until their confirm arrives. */
  returned: Set<string>;
}

function failureOf(error: unknown): PublishFailure {
  if (error instanceof PublishError) return error.reason;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const message = (error as Error).message ?? '';
  if (REFUSED_CODES.has(code)) return 'refused';
  if (code === 'ETIMEDOUT' || /timed? ?out/i.test(message)) return 'timeout';
  if (/ACCESS_REFUSED|403|auth/i.test(message)) return 'denied';
  if ((error as { code?: unknown }).code === 404 || /NOT_FOUND|404/.test(message)) return 'missing';
  return 'error';
}

/** The URL without its password, for logs and health. */
function described(url: string, queue: string): string {
  const shown = new URL(url);
  if (shown.password) shown.password = '***';
  return `${shown.href}?queue=${queue}`;
}

/** `promise`, or a PublishError (timeout) once `ms` passed. */
async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const settled = await within(promise, ms);
  if (settled === 'timeout') throw new PublishError(`${what}: no answer within ${ms} ms`, 'timeout');
  return settled;
}

/** Closes the connection, or cuts its socket when the broker does not answer the close in time. */
async function drop(connection: ChannelModel): Promise<void> {
  const closing = connection.close().catch(() => undefined);
  if ((await within(closing, CLOSE_MS)) === 'timeout') {
    // amqplib keeps the socket on the connection it wraps; a broker that never sends CloseOk holds it.
    // Cut with an error: amqplib ends the connection (and its heartbeat timer) on the socket's 'error', not on 'close'.
    (connection as unknown as { connection?: { stream?: Socket } }).connection?.stream?.destroy(new Error(`no answer to the close within ${CLOSE_MS} ms: connection cut`));
  }
}

export class AmqpPublisher implements CrashPublisher {
  readonly description: string;
  readonly batchSize = AMQP_BATCH;
  private connecting: Promise<Link> | undefined;
  private closed = false;

  constructor(private readonly options: AmqpOptions) {
    this.description = described(options.url, options.queue);
  }

  private connection(): Promise<Link> {
    if (this.closed) return Promise.reject(new PublishError('publisher closed', 'error'));
    this.connecting ??= (async () => {
      const connection = await amqp.connect(this.options.url, { timeout: this.options.connectMs });
      // Without a listener an 'error' event would end the process; a broken connection is simply made again.
      const forget = (error?: Error) => {
        if (error) this.options.logger.warn({ queue: this.description, error: error.message }, 'queue connection lost; connecting again when needed');
        this.connecting = undefined;
      };
      connection.on('error', forget);
      connection.on('close', () => forget());
      try {
        const link = await bounded(this.openChannel(connection), this.options.connectMs, `opening a channel on ${this.description}`);
        if (this.closed) throw new PublishError('publisher closed', 'error');
        return link;
      } catch (error) {
        await drop(connection);
        throw error;
      }
    })();
    const made = this.connecting;
    made.catch(() => {
      if (this.connecting === made) this.connecting = undefined;
    });
    return made;
  }

  private async openChannel(connection: ChannelModel): Promise<Link> {
    const channel = await connection.createConfirmChannel();
    const returned = new Set<string>();
    channel.on('error', (error: Error) => this.options.logger.warn({ queue: this.description, error: error.message }, 'queue channel failed'));
    channel.on('close', () => {
      this.connecting = undefined;
      void drop(connection);
    });
    // The broker sends a returned message before its confirm (AMQP 0-9-1, publisher confirms).
    channel.on('return', (message: ConsumeMessage) => returned.add(message.content.toString()));
    await channel.checkQueue(this.options.queue);
    return { connection, channel, returned };
  }

  async publish(crashIds: readonly string[]): Promise<PublishResult> {
    let link: Link;
    try {
      link = await this.connection();
    } catch (error) {
      throw new PublishError(`connecting to ${this.description}: ${(error as Error).message}`, failureOf(error), { cause: error });
    }
    const { channel, returned } = link;
    const outcomes = crashIds.map(
      (crashId) =>
        new Promise<{ crashId: string; failure?: EntryFailure; lost?: true }>((resolve) => {
          const options = { persistent: true, mandatory: true, contentType: 'text/plain' };
          channel.sendToQueue(this.options.queue, Buffer.from(crashId), options, (error: unknown) => {
            const wasReturned = returned.delete(crashId);
            // amqplib fails what awaits a confirm with 'channel closed' when the connection is lost:
            // no answer about that message, unlike a nack.
            if ((error as Error | undefined)?.message === 'channel closed') {
              resolve({ crashId, lost: true });
            } else if (error) {
              resolve({ crashId, failure: { crashId, error: `nack: ${String((error as Error)?.message ?? error)}`, reason: 'nacked', scope: 'queue' } });
            } else if (wasReturned) {
              resolve({ crashId, failure: { crashId, error: `returned: no queue ${this.options.queue} to route to`, reason: 'unroutable', scope: 'queue' } });
            } else {
              resolve({ crashId });
            }
          });
        }),
    );
    const settled = await within(Promise.all(outcomes), this.options.timeoutMs);
    if (settled === 'timeout') {
      // Unconfirmed: whether the broker has them is unknown, so they are published again later.
      if (this.connecting) this.connecting = undefined;
      for (const crashId of crashIds) returned.delete(crashId);
      void drop(link.connection);
      throw new PublishError(`${this.description}: no confirm within ${this.options.timeoutMs} ms`, 'timeout');
    }
    const confirmed = settled.filter((outcome) => outcome.failure === undefined && !outcome.lost);
    if (confirmed.length === 0 && settled.some((outcome) => outcome.lost)) {
      throw new PublishError(`${this.description}: the connection was lost before the broker confirmed`, 'refused');
    }
    // Those lost with the connection are in neither list: the announcer publishes them again.
    return {
      published: confirmed.map((outcome) => outcome.crashId),
      failed: settled.flatMap((outcome) => (outcome.failure ? [outcome.failure] : [])),
      unknown: [],
    };
  }

  /** The queue exists (a passive declare on a channel of its own) and the broker answers, within the publish timeout. */
  async checkReachable(): Promise<void> {
    try {
      await bounded(
        (async () => {
          const { connection } = await this.connection();
          const channel = await connection.createChannel();
          channel.on('error', () => undefined);
          await channel.checkQueue(this.options.queue);
          await channel.close();
        })(),
        this.options.timeoutMs,
        `checking ${this.description}`,
      );
    } catch (error) {
      throw new PublishError(`checking queue ${this.options.queue}: ${(error as Error).message}`, failureOf(error), { cause: error });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const connecting = this.connecting;
    this.connecting = undefined;
    const link = connecting && (await within(connecting.catch(() => undefined), CLOSE_MS));
    if (link && link !== 'timeout') await drop(link.connection);
  }
}
