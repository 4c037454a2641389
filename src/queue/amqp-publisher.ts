/**
 * RabbitMQ (AMQP 0-9-1) via amqplib: each crash ID a persistent message to the queue through the
 * default exchange, on a confirm channel — a crash counts as published only once the broker
 * confirmed its message (publisher confirms), and a nack is a failure of that crash only. The
 * connection is made when first needed and again after it broke; a publish the broker has not
 * confirmed within the timeout fails, and the connection is dropped (its state is unknown).
 * Permissions: write on the default exchange for the queue; configure or read are not needed
 * (the queue is checked passively, never declared: its settings belong to the processor's side).
 */
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { Logger } from '../logger.js';
import { PublishError, type CrashPublisher, type PublishFailure, type PublishResult } from './publisher.js';

const AMQP_BATCH = 50;
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

function failureOf(error: unknown): PublishFailure {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const message = (error as Error).message ?? '';
  if (REFUSED_CODES.has(code)) return 'refused';
  if (code === 'ETIMEDOUT' || /timed? ?out/i.test(message)) return 'timeout';
  if (/ACCESS_REFUSED|403|auth/i.test(message)) return 'denied';
  return 'error';
}

/** The URL without its password, for logs and health. */
function described(url: string, queue: string): string {
  const shown = new URL(url);
  if (shown.password) shown.password = '***';
  return `${shown.href}?queue=${queue}`;
}

export class AmqpPublisher implements CrashPublisher {
  readonly description: string;
  readonly batchSize = AMQP_BATCH;
  private connecting: Promise<{ connection: ChannelModel; channel: ConfirmChannel }> | undefined;
  private closed = false;

  constructor(private readonly options: AmqpOptions) {
    this.description = described(options.url, options.queue);
  }

  private connection(): Promise<{ connection: ChannelModel; channel: ConfirmChannel }> {
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
        const channel = await connection.createConfirmChannel();
        channel.on('error', (error: Error) => this.options.logger.warn({ queue: this.description, error: error.message }, 'queue channel failed'));
        channel.on('close', () => {
          this.connecting = undefined;
          connection.close().catch(() => undefined);
        });
        await channel.checkQueue(this.options.queue);
        return { connection, channel };
      } catch (error) {
        await connection.close().catch(() => undefined);
        throw error;
      }
    })();
    const made = this.connecting;
    made.catch(() => {
      if (this.connecting === made) this.connecting = undefined;
    });
    return made;
  }

  async publish(crashIds: readonly string[]): Promise<PublishResult> {
    let link;
    try {
      link = await this.connection();
    } catch (error) {
      throw new PublishError(`connecting to ${this.description}: ${(error as Error).message}`, failureOf(error), { cause: error });
    }
    const { channel, connection } = link;
    const outcomes = crashIds.map(
      (crashId) =>
        new Promise<{ crashId: string; error?: string }>((resolve) => {
          channel.sendToQueue(this.options.queue, Buffer.from(crashId), { persistent: true, contentType: 'text/plain' }, (error: unknown) =>
            resolve(error ? { crashId, error: `nack: ${String((error as Error)?.message ?? error)}` } : { crashId }),
          );
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.options.timeoutMs)));
    const settled = await Promise.race([Promise.all(outcomes), timedOut]);
    clearTimeout(timer);
    if (settled === 'timeout') {
      // Unconfirmed: whether the broker has them is unknown, so they are published again later.
      this.connecting = undefined;
      connection.close().catch(() => undefined);
      throw new PublishError(`${this.description}: no confirm within ${this.options.timeoutMs} ms`, 'timeout');
    }
    return {
      published: settled.filter((outcome) => outcome.error === undefined).map((outcome) => outcome.crashId),
      failed: settled.filter((outcome) => outcome.error !== undefined).map((outcome) => ({ crashId: outcome.crashId, reason: outcome.error! })),
    };
  }

  async checkReachable(): Promise<void> {
    try {
      const { connection } = await this.connection();
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      await channel.checkQueue(this.options.queue);
      await channel.close();
    } catch (error) {
      throw new PublishError(`queue ${this.description}: ${(error as Error).message}`, failureOf(error), { cause: error });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const link = await this.connecting?.catch(() => undefined);
    this.connecting = undefined;
    await link?.connection.close().catch(() => undefined);
  }
}
