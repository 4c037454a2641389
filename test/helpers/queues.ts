/**
 * The processing queues of the tests (scripts/local-queues: RabbitMQ, an SQS-protocol server and
 * Google's Pub/Sub emulator),
 * read the way Socorro's processor reads them: receive, then delete (SQS) or ack (AMQP, Pub/Sub). Each test
 * gets a queue of its own.
 */
import { CreateQueueCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import amqp, { type Channel } from 'amqplib';
import { randomBytes } from 'node:crypto';

export function queueSettings() {
  const sqs = process.env['SQS_QUEUE_URL'];
  const amqpUrl = process.env['AMQP_URL'];
  if (!sqs || !amqpUrl) throw new Error('SQS_QUEUE_URL and AMQP_URL are not set: run the tests with `npm test`, which starts scripts/local-queues');
  return { sqsEndpoint: new URL(sqs).origin, amqpUrl };
}

/** A queue of its own for one test, and what its consumer has received so far. */
export interface TestQueue {
  /** PUBLISH_URL for the collector, through `via` (a fault proxy's origin or port) when given. */
  publishUrl(via?: string | number): string;
  /** The collector's environment that announces here (PUBLISH_URL, and for Pub/Sub its endpoint), through `via` when given. */
  publishEnv(via?: string | number): Record<string, string>;
  /** Receives (and deletes or acks) what has arrived; every body, in order, duplicates included. */
  receive(): Promise<string[]>;
  /** A read was given up (it hung): drop whatever it waits on, so that the next read starts afresh. */
  abandon?(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Runs one read pass into a list of bodies. A pass that fails after reading some (the queue was
 * deleted under it) returns those: they are taken off the queue already and would be lost with
 * the error; a pass that read nothing fails.
 */
export async function keepingWhatWasRead(read: (bodies: string[]) => Promise<void>): Promise<string[]> {
  const bodies: string[] = [];
  try {
    await read(bodies);
  } catch (error) {
    if (bodies.length === 0) throw error;
  }
  return bodies;
}

/** No request of a test's reader may hang for good: a read that fails is read again. */
const READ_TIMEOUTS = { connectionTimeout: 5_000, requestTimeout: 15_000, throwOnRequestTimeout: true };

const name = (kind: string) => `crashspool-${kind}-${randomBytes(4).toString('hex')}`;

export async function sqsQueue(): Promise<TestQueue> {
  const { sqsEndpoint } = queueSettings();
  const client = new SQSClient({
    endpoint: sqsEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    requestHandler: READ_TIMEOUTS,
  });
  const queueName = name('sqs');
  await client.send(new CreateQueueCommand({ QueueName: queueName }));
  const queueUrl = `${sqsEndpoint}/000000000000/${queueName}`;
  const publishUrl = (via?: string | number) => `sqs:${typeof via === 'string' ? via : sqsEndpoint}/000000000000/${queueName}`;
  return {
    publishUrl,
    publishEnv: (via) => ({ PUBLISH_URL: publishUrl(via) }),
    receive: () =>
      keepingWhatWasRead(async (bodies) => {
        for (;;) {
          const got = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
          const messages = got.Messages ?? [];
          if (messages.length === 0) return;
          bodies.push(...messages.map((message) => message.Body ?? ''));
          await client.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: messages.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })) }));
        }
      }),
    async close() {
      client.destroy();
    },
  };
}

/** A RabbitMQ queue that the test can also delete and declare again, as a processor's redeploy does. */
export interface AmqpTestQueue extends TestQueue {
  deleteQueue(): Promise<void>;
  declareQueue(): Promise<void>;
  /** Puts `count` messages that are no crash ID on the queue (to fill one with `x-max-length`). */
  fill(count: number): Promise<void>;
}

/**
 * `args`: the queue's arguments, e.g. `{ 'x-max-length': 5, 'x-overflow': 'reject-publish' }`;
 * `port`: the broker's port to connect to (a fault proxy's, to cut the test's own connection).
 */
export async function amqpQueue(args: Record<string, unknown> = {}, port?: number): Promise<AmqpTestQueue> {
  const { amqpUrl } = queueSettings();
  const queueName = name('amqp');
  const connectUrl = new URL(amqpUrl);
  if (port !== undefined) connectUrl.port = String(port);
  // The connection is opened again once it is gone (the broker closed it, or it was cut), and so is
  // a channel that could not be opened: either would otherwise fail every later read.
  let connecting: Promise<amqp.ChannelModel> | undefined;
  const connected = () =>
    (connecting ??= amqp.connect(connectUrl.href).then(
      (connection) => {
        connection.on('error', () => undefined);
        connection.on('close', () => {
          connecting = undefined;
          reading = undefined;
        });
        return connection;
      },
      (error: Error) => {
        connecting = undefined;
        throw error;
      },
    ));
  // The consumer's channel: reading a queue that was deleted closes it (404), which fails whatever
  // else was pending on it; the next read opens another.
  let reading: Promise<Channel> | undefined;
  const readingChannel = () =>
    (reading ??= connected()
      .then((connection) => connection.createChannel())
      .then(
        (channel) => {
          channel.on('error', () => undefined);
          channel.on('close', () => (reading = undefined));
          return channel;
        },
        (error: Error) => {
          reading = undefined;
          throw error;
        },
      ));
  // What the test does to the queue runs on a channel of its own, so the consumer's 404 cannot end it.
  const onOwnChannel = async <T>(work: (channel: Channel) => Promise<T>): Promise<T> => {
    const channel = await (await connected()).createChannel();
    channel.on('error', () => undefined);
    try {
      return await work(channel);
    } finally {
      await channel.close().catch(() => undefined);
    }
  };
  const publishUrl = (via?: string | number) => {
    const url = new URL(amqpUrl);
    if (typeof via === 'number') url.port = String(via);
    url.searchParams.set('queue', queueName);
    return url.href;
  };
  const declareQueue = () => onOwnChannel(async (channel) => void (await channel.assertQueue(queueName, { durable: true, arguments: args })));
  await declareQueue();
  return {
    declareQueue,
    deleteQueue: () => onOwnChannel(async (channel) => void (await channel.deleteQueue(queueName))),
    fill: (count) =>
      onOwnChannel(async (channel) => {
        for (let sent = 0; sent < count; sent++) channel.sendToQueue(queueName, Buffer.from(`filler ${sent}`));
        // Answered only after what this channel sent before it was routed.
        await channel.checkQueue(queueName);
      }),
    publishUrl,
    publishEnv: (via) => ({ PUBLISH_URL: publishUrl(via) }),
    receive: () =>
      keepingWhatWasRead(async (bodies) => {
        const channel = await readingChannel();
        for (let message = await channel.get(queueName); message; message = await channel.get(queueName)) {
          bodies.push(message.content.toString());
          channel.ack(message);
        }
      }),
    // Closing the channel fails the get it hangs on, and the broker puts back what it delivered unacknowledged.
    async abandon() {
      const channel = reading;
      reading = undefined;
      await channel?.then((open) => open.close()).catch(() => undefined);
    },
    async close() {
      await onOwnChannel((channel) => channel.deleteQueue(queueName)).catch(() => undefined);
      await connecting?.then((connection) => connection.close()).catch(() => undefined);
    },
  };
}

/**
 * Why the Pub/Sub tests cannot run here (no emulator: scripts/local-queues says why), or undefined.
 * Under CI=true never a reason: there the emulator must be present, and a test without it fails.
 */
export function pubsubSkipReason(): string | undefined {
  if (process.env['PUBSUB_EMULATOR_HOST'] || process.env['CI'] === 'true') return undefined;
  return 'PUBSUB_EMULATOR_HOST is not set: the Pub/Sub emulator (google-cloud-cli-pubsub-emulator) is missing on this machine or scripts/local-queues was started before it knew it';
}

/** A topic of its own on the Pub/Sub emulator, and a subscription that reads it as Socorro's processor does (pull, then acknowledge). */
export async function pubsubQueue(): Promise<TestQueue> {
  const emulator = process.env['PUBSUB_EMULATOR_HOST'];
  if (!emulator) throw new Error('PUBSUB_EMULATOR_HOST is not set: run the tests with `npm test`, which starts the Pub/Sub emulator with scripts/local-queues');
  const project = 'crashspool-test';
  const topic = `projects/${project}/topics/${name('pubsub')}`;
  const subscription = `projects/${project}/subscriptions/${name('pubsub')}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`http://${emulator}/v1/${path}`, {
      signal: AbortSignal.timeout(READ_TIMEOUTS.requestTimeout),
      method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    if (!response.ok) throw new Error(`Pub/Sub emulator ${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  await call('PUT', topic);
  await call('PUT', subscription, { topic, ackDeadlineSeconds: 60 });
  const publishUrl = () => `pubsub:${topic}`;
  return {
    publishUrl,
    publishEnv: (via) => ({ PUBLISH_URL: publishUrl(), PUBSUB_EMULATOR_HOST: via === undefined ? emulator : typeof via === 'number' ? `127.0.0.1:${via}` : new URL(via).host }),
    receive: () =>
      keepingWhatWasRead(async (bodies) => {
        for (;;) {
          const got = await call('POST', `${subscription}:pull`, { maxMessages: 100, returnImmediately: true });
          const messages = (got['receivedMessages'] ?? []) as { ackId: string; message: { data?: string } }[];
          if (messages.length === 0) return;
          bodies.push(...messages.map(({ message }) => Buffer.from(message.data ?? '', 'base64').toString('utf8')));
          await call('POST', `${subscription}:acknowledge`, { ackIds: messages.map((message) => message.ackId) });
        }
      }),
    async close() {
      await call('DELETE', subscription).catch(() => undefined);
      await call('DELETE', topic).catch(() => undefined);
    },
  };
}
