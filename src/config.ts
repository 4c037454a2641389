/**
 * The one configuration schema: every setting is an environment variable, declared here with its
 * default and a line of doc. `loadConfig` validates all of them at start (a bad value stops the
 * process with a message naming the variable) and `scripts/config-table` prints the table in docs/CONFIGURATION.md
 * from the same list, so the documentation cannot drift from the code.
 */

import { parseDuration } from './duration.js';
import { drainInflightFor, inflightBudgetFor, memoryLimit } from './memory-limit.js';

export class ConfigError extends Error {}

interface Setting<T> {
  env: string;
  doc: string;
  /** The default as an operator would write it in the environment. */
  default: string;
  parse(raw: string): T;
}

function setting<T>(env: string, fallback: string, doc: string, parse: (raw: string) => T): Setting<T> {
  return { env, doc, default: fallback, parse };
}

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw.trim())) throw new Error(`expected a whole number, got "${raw}"`);
    const value = Number(raw);
    if (value < min || value > max) throw new Error(`expected ${min}..${max}, got ${value}`);
    return value;
  };
}

/** A byte size, or `auto`: the size `derive` gives for the memory the process may use (memory-limit.ts). */
function orAuto(derive: (limitBytes: number) => number) {
  return (raw: string): number => (raw.trim() === 'auto' ? derive(memoryLimit().bytes) : parseByteSize(raw));
}

function seconds(min: number) {
  return (raw: string): number => {
    const value = Number(raw.trim());
    if (raw.trim() === '' || !Number.isFinite(value)) throw new Error(`expected a number of seconds, got "${raw}"`);
    if (value < min) throw new Error(`expected at least ${min} seconds, got ${value}`);
    return value;
  };
}

/** Sizes accept plain bytes or a suffix: 512k, 25m, 2g (binary multiples). */
export function parseByteSize(raw: string): number {
  const match = /^(\d+)\s*([kmg]i?b?|b)?$/i.exec(raw.trim());
  if (!match) throw new Error(`expected a size such as 25m or 1048576, got "${raw}"`);
  const unit = (match[2] ?? 'b').toLowerCase()[0];
  const factor = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  const value = Number(match[1]) * factor;
  if (value < 1 || !Number.isSafeInteger(value)) throw new Error(`size out of range: "${raw}"`);
  return value;
}

function oneOf<T extends string>(...choices: T[]) {
  return (raw: string): T => {
    if (!(choices as string[]).includes(raw)) throw new Error(`expected one of ${choices.join(', ')}, got "${raw}"`);
    return raw as T;
  };
}

function text(raw: string): string {
  return raw;
}

function optionalUrl(raw: string): string | undefined {
  if (raw === '') return undefined;
  try {
    new URL(raw);
  } catch {
    throw new Error(`expected a URL such as http://127.0.0.1:7480, got "${raw}"`);
  }
  return raw;
}

function keyList(raw: string): string[] {
  return raw
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '');
}

export type StorageTarget =
  | { kind: 'file'; dir: string }
  | { kind: 's3'; bucket: string; prefix: string };

export function parseStorageUrl(raw: string): StorageTarget {
  if (raw.startsWith('file://')) {
    const dir = raw.slice('file://'.length);
    if (dir === '') throw new Error('file:// needs a directory, e.g. file://./crashes');
    return { kind: 'file', dir };
  }
  const s3 = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/.*)?$/.exec(raw);
  if (s3) {
    const prefix = (s3[2] ?? '').replace(/^\/+|\/+$/g, '');
    return { kind: 's3', bucket: s3[1]!, prefix: prefix === '' ? '' : `${prefix}/` };
  }
  if (raw.startsWith('s3://')) {
    throw new Error(`"${raw}": an S3 bucket name is 3 to 63 characters of lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit`);
  }
  throw new Error(`expected s3://bucket[/prefix] or file://<dir>, got "${raw}"`);
}

/**
 * Where each stored crash's ID is announced (PUBLISH_URL); undefined: nowhere. `none`: nowhere, said
 * on purpose — also on a spool that announced until now, whose crashes then leave unannounced.
 */
export type PublishTarget =
  | { kind: 'sqs'; queueUrl: string }
  | { kind: 'amqp'; url: string; queue: string }
  | { kind: 'pubsub'; topic: string }
  | { kind: 'none' };

const PUBLISH_URL_FORMS = 'expected sqs:<queue URL>, amqp://user:password@host:port/vhost?queue=<name>, pubsub:projects/<project>/topics/<topic> or none';
/** Pub/Sub's resource names: a project ID, then a topic of 3-255 characters starting with a letter. */
const PUBSUB_TOPIC = /^projects\/[a-z][a-z0-9.:-]{1,62}[a-z0-9]\/topics\/[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$/;

export function parsePublishUrl(raw: string): PublishTarget | undefined {
  const value = raw.trim();
  if (value === '') return undefined;
  if (value === 'none') return { kind: 'none' };
  if (value.startsWith('sqs:')) {
    let queue: URL;
    try {
      queue = new URL(value.slice('sqs:'.length));
    } catch {
      throw new Error(`${PUBLISH_URL_FORMS}; "${value.slice(4)}" is not a URL`);
    }
    if (!/^https?:$/.test(queue.protocol) || queue.pathname.split('/').filter(Boolean).length !== 2) {
      throw new Error(`${PUBLISH_URL_FORMS}; an SQS queue URL looks like https://sqs.<region>.amazonaws.com/<account>/<queue>`);
    }
    return { kind: 'sqs', queueUrl: queue.href };
  }
  if (value.startsWith('pubsub:')) {
    const topic = value.slice('pubsub:'.length);
    if (!PUBSUB_TOPIC.test(topic) || /^projects\/[^/]+\/topics\/goog/i.test(topic)) {
      throw new Error(`${PUBLISH_URL_FORMS}; "${topic}" is not a Pub/Sub topic name (projects/<project>/topics/<topic>, the topic 3-255 characters starting with a letter)`);
    }
    return { kind: 'pubsub', topic };
  }
  if (/^amqps?:\/\//.test(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Error(`${PUBLISH_URL_FORMS}; "${value}" is not a URL`);
    }
    const queue = url.searchParams.get('queue');
    if (!queue) throw new Error(`${PUBLISH_URL_FORMS}; the ?queue= parameter is missing`);
    url.searchParams.delete('queue');
    return { kind: 'amqp', url: url.href, queue };
  }
  throw new Error(`${PUBLISH_URL_FORMS}, got "${value}"`);
}

export const settings = {
  port: setting('PORT', '8000', 'TCP port of the public HTTP endpoint (`/submit`, health).', integer(0, 65535)),
  host: setting('HOST', '0.0.0.0', 'Address to listen on.', text),
  spoolDir: setting(
    'SPOOL_DIR',
    './spool',
    'Directory of the SQLite spool. Holds every acknowledged crash until storage confirmed it; put it on a persistent disk.',
    text,
  ),
  durability: setting(
    'SPOOL_DURABILITY',
    'full',
    '`full`: each commit is fsynced before the ack (survives power loss). `normal`: not fsynced (survives kill -9, not power loss).',
    oneOf('full', 'normal'),
  ),
  storageUrl: setting(
    'STORAGE_URL',
    'file://./crashes',
    'Where crashes are drained to: `s3://bucket[/prefix]` or `file://<dir>` (same key layout as files).',
    parseStorageUrl,
  ),
  s3Endpoint: setting(
    'S3_ENDPOINT',
    '',
    'S3 endpoint for a non-AWS server (path-style addressing is used then). Empty: AWS. Credentials and region come from the standard AWS variables.',
    optionalUrl,
  ),
  storageConnectTimeoutSeconds: setting(
    'STORAGE_CONNECT_TIMEOUT_SECONDS',
    '3',
    'S3: a connection not established within this time fails the request (it is retried).',
    seconds(0.1),
  ),
  storageIdleTimeoutSeconds: setting(
    'STORAGE_IDLE_TIMEOUT_SECONDS',
    '10',
    'S3: a request during which no byte moves for this long fails (a server that accepts but never answers; it is retried).',
    seconds(0.1),
  ),
  storageRequestTimeoutSeconds: setting(
    'STORAGE_REQUEST_TIMEOUT_SECONDS',
    '60',
    'S3: the longest one request may take in all, first byte to last (it is retried). Size it for your largest dump over your uplink.',
    seconds(0.1),
  ),
  storageMaxAttempts: setting(
    'STORAGE_MAX_ATTEMPTS',
    '3',
    "S3: attempts per request by the AWS SDK's standard retry strategy (jittered exponential backoff, retry quota) before the drainer sees the failure and retries the crash later.",
    integer(1, 10),
  ),
  publishUrl: setting(
    'PUBLISH_URL',
    '',
    "Where each stored crash's ID is announced for Socorro's processor, at least once: `sqs:<queue URL>` (AWS SQS or an SQS-protocol server: the queue URL's host is the endpoint; credentials and region from the standard AWS variables) or `amqp://user:password@host:port/vhost?queue=<name>` (RabbitMQ, publisher confirms, persistent messages) or `pubsub:projects/<project>/topics/<topic>` (Google Pub/Sub, as today's Antenna announces: credentials from Google's standard chain; `PUBSUB_EMULATOR_HOST=host:port` uses the emulator, as Google's clients do). The message body is the crash ID. Empty: nothing is announced — refused on a spool that announces (it records its queue at the first start with PUBLISH_URL), so that a forgotten setting cannot let crashes leave unannounced; `none` says so on purpose: the crashes waiting there leave unannounced, each logged and counted in `crashspool_unannounced_total`.",
    parsePublishUrl,
  ),
  publishConnectTimeoutSeconds: setting(
    'PUBLISH_CONNECT_TIMEOUT_SECONDS',
    '3',
    'Queue: a connection not established within this time fails the publish (it is retried). Pub/Sub: connecting counts toward `PUBLISH_TIMEOUT_SECONDS`.',
    seconds(0.1),
  ),
  publishTimeoutSeconds: setting(
    'PUBLISH_TIMEOUT_SECONDS',
    '10',
    'Queue: the longest one publish may take, until the queue confirmed it (SQS and Pub/Sub: its answer; RabbitMQ: the publisher confirm); then it fails and is retried.',
    seconds(0.1),
  ),
  logLevel: setting('LOG_LEVEL', 'info', 'pino log level.', oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent')),
  drainConcurrency: setting(
    'DRAIN_CONCURRENCY',
    '32',
    'Crashes uploaded at the same time. Each crash is two round trips to storage (dumps and `dump_names` side by side, then the raw crash): with a cloud region\'s ~50 ms per request, 8 at a time drained ~60 crashes/s, 32 about four times that.',
    integer(1, 256),
  ),
  drainInflightMaxBytes: setting(
    'DRAIN_INFLIGHT_MAX_BYTES',
    'auto',
    'Spooled bytes of the crashes being uploaded at once (they are read into memory); fewer than `DRAIN_CONCURRENCY` crashes go when large ones would exceed it, and a single larger crash goes alone. `auto`: an eighth of the memory the process may use (the container\'s limit, else the machine\'s memory), 64m to 128m.',
    orAuto(drainInflightFor),
  ),
  drainConcurrencyWhileReceiving: setting(
    'DRAIN_CONCURRENCY_WHILE_RECEIVING',
    '1',
    'Fewest crashes uploaded at the same time while reports are being received (or were in the last second): acks come first, the spool is the buffer. From there the drainer adds one upload every 250 ms while the event loop is busy less than 60% of the time and the machine cores less than 75%, and halves when the loop is busy over 85% or the cores over 90%, up to `DRAIN_CONCURRENCY`; still busy at this minimum, uploads also start at most one per 100 ms. All of `DRAIN_CONCURRENCY` is used while the oldest crash due for upload is older than `DRAIN_YIELD_MAX_SECONDS` or the spool holds more than half of `SPOOL_MAX_BYTES`.',
    integer(1, 256),
  ),
  drainYieldMaxSeconds: setting(
    'DRAIN_YIELD_MAX_SECONDS',
    '60',
    'How long uploads may be held back for receiving: once the oldest crash due for upload (not waiting for a retry) is older, the drainer uses `DRAIN_CONCURRENCY` even while reports arrive. Bounds how late a burst reaches storage.',
    seconds(0),
  ),
  retryBaseSeconds: setting(
    'DRAIN_RETRY_BASE_SECONDS',
    '1',
    'First retry delay after a failed upload; doubles per failure (with jitter) up to the maximum.',
    seconds(0.01),
  ),
  retryMaxSeconds: setting('DRAIN_RETRY_MAX_SECONDS', '60', 'Upper bound of the retry delay of a crash. While storage as a whole is down, one upload probes it at least every 5 s.', seconds(0.01)),
  maxAttempts: setting(
    'DRAIN_MAX_ATTEMPTS',
    '10',
    'Failures that concern one crash only (e.g. rejected as too large) before it moves to the dead-letter state. Outages of the whole storage never count.',
    integer(1),
  ),
  shutdownDeadlineSeconds: setting(
    'SHUTDOWN_DEADLINE_SECONDS',
    '25',
    'After SIGTERM/SIGINT, how long in-flight requests and the drainer may run before the process exits; keep it inside the orchestrator grace period (Kubernetes: 30 s).',
    seconds(0),
  ),
  shutdownLbGraceSeconds: setting(
    'SHUTDOWN_LB_GRACE_SECONDS',
    '0',
    'After SIGTERM, keep accepting this long while `/__lbheartbeat__` already answers 503, so a load balancer can notice.',
    seconds(0),
  ),
  maxBodyBytes: setting('MAX_BODY_BYTES', '32m', 'Largest request body as sent (compressed).', parseByteSize),
  maxDecompressedBytes: setting(
    'MAX_DECOMPRESSED_BYTES',
    '128m',
    'Largest body after gunzip (protects against gzip bombs).',
    parseByteSize,
  ),
  wholeBodyMaxBytes: setting(
    'WHOLE_BODY_MAX_BYTES',
    '256k',
    'Request bodies up to this size as sent are read whole and parsed in one pass, which costs a small report about a third less CPU; larger ones are parsed as they arrive. Those in flight hold up to this much each (plus up to 2 MiB while one is inflated). 0 parses every body as it arrives.',
    (raw) => (raw.trim() === '0' ? 0 : parseByteSize(raw)),
  ),
  maxParts: setting('MAX_PARTS', '512', 'Most multipart parts (annotations plus files) in one report.', integer(1)),
  maxAnnotations: setting('MAX_ANNOTATIONS', '500', 'Most annotations in one report.', integer(1)),
  maxAnnotationBytes: setting('MAX_ANNOTATION_BYTES', '1m', 'Largest single annotation value (or JSON `extra` part).', parseByteSize),
  maxDumpBytes: setting('MAX_DUMP_BYTES', '64m', 'Largest single dump.', parseByteSize),
  maxTotalDumpBytes: setting('MAX_TOTAL_DUMP_BYTES', '100m', 'Largest sum of all dumps of one report.', parseByteSize),
  inflightMaxBytes: setting(
    'INFLIGHT_MAX_BYTES',
    'auto',
    'Memory budget for report bytes held by requests in flight (admission control); a request that would exceed it gets 503 with Retry-After. `auto`: a quarter of the memory the process may use (the container\'s limit, as cgroup v1 or v2 says, else the machine\'s memory), 128m to 512m: peak RSS then stays under three quarters of the limit (docs/OPERATIONS.md, *Limits, memory and disk*).',
    orAuto(inflightBudgetFor),
  ),
  spoolMaxBytes: setting(
    'SPOOL_MAX_BYTES',
    '20g',
    'Largest total size of spooled crashes, counted as uploaded (a report kept gzipped takes about a fifth of that on disk); beyond it new crashes get 503 with Retry-After until the drainer frees space. Size it for the longest storage outage you want to ride out.',
    parseByteSize,
  ),
  spoolMinFreeBytes: setting(
    'SPOOL_MIN_FREE_BYTES',
    '64m',
    'Free space kept on the spool file system: below it new crashes get 503 with Retry-After, so the drainer always has room to delete what it uploaded. 0 turns the check off.',
    (raw) => (raw.trim() === '0' ? 0 : parseByteSize(raw)),
  ),
  spoolCheckpointBytes: setting(
    'SPOOL_CHECKPOINT_BYTES',
    '64m',
    'Crash bytes (as stored: a report kept gzipped counts its gzipped size) committed to the spool\'s write-ahead log before it is copied into the database file (also after 1 s without writes, and all the time while free space is under `SPOOL_MIN_FREE_BYTES` + 4 × this). Larger writes less: pages freed by uploads and reused within the window are copied once. While uploads do not keep up (fewer crash bytes removed than half those appended), the log is copied every 2 MiB instead: nothing is reused then, and a long copy delays acks. The log file can reach about twice this.',
    (raw) => {
      const bytes = parseByteSize(raw);
      if (bytes < 1024 * 1024) throw new Error('must be at least 1m');
      return bytes;
    },
  ),
  headersTimeoutSeconds: setting('HEADERS_TIMEOUT_SECONDS', '15', 'Time a client has to send the request headers (slowloris).', seconds(0.1)),
  requestTimeoutSeconds: setting(
    'REQUEST_TIMEOUT_SECONDS',
    '300',
    'Time a client has to send a whole request; a 25 MB report over a slow uplink needs minutes.',
    seconds(0.1),
  ),
  idleTimeoutSeconds: setting(
    'IDLE_TIMEOUT_SECONDS',
    '30',
    'A connection that sends nothing for this long is closed (stalled uploads free their memory).',
    seconds(0.1),
  ),
  metricsPort: setting(
    'METRICS_PORT',
    '',
    'Serve `/metrics` on this separate port (on HOST) instead of the public one, so it is not exposed with `/submit`. Empty: public port.',
    (raw) => (raw === '' ? undefined : integer(0, 65535)(raw)),
  ),
  healthMaxPending: setting('HEALTH_MAX_PENDING', '100000', '`/__heartbeat__` fails when more crashes than this wait in the spool.', integer(1)),
  healthMaxAgeSeconds: setting(
    'HEALTH_MAX_AGE_SECONDS',
    '3600',
    '`/__heartbeat__` fails when the oldest pending crash is older than this, or (with PUBLISH_URL) a stored crash has waited this long for the queue.',
    seconds(1),
  ),
  healthDrainStallSeconds: setting(
    'HEALTH_DRAIN_STALL_SECONDS',
    '300',
    '`/__heartbeat__` fails when crashes are pending and none was uploaded for this long.',
    seconds(1),
  ),
  removeAnnotations: setting(
    'REMOVE_ANNOTATIONS',
    'Email,TelemetryClientId,TelemetryServerURL,TelemetrySessionId',
    "Comma-separated annotation keys removed before storage (personal data); each removal is noted in the raw crash. The default is Antenna's list; empty keeps everything.",
    keyList,
  ),
  dedupWindow: setting(
    'DEDUP_WINDOW',
    '7d',
    'A report posted again within this time (a client retrying after a lost answer) is answered with its first crash ID and not stored again (`30m`, `12h`, `7d`). `0`: every post is a new crash.',
    (raw) => (raw.trim() === '0' ? 0 : parseDuration(raw)),
  ),
  uploadTokens: setting(
    'UPLOAD_TOKENS',
    '',
    'Path of a JSON file of upload tokens (docs/CONFIGURATION.md: Upload tokens); `/submit` then needs one (`?token=` or `Authorization: Bearer`). Re-read on SIGHUP. Empty: anyone may post.',
    (raw) => (raw.trim() === '' ? undefined : raw.trim()),
  ),
  throttleRules: setting(
    'THROTTLE_RULES',
    'accept_all',
    "`accept_all` (store every report), `mozilla` (Antenna's `MOZILLA_RULES`) or the path of a JSON rules file (docs/CONFIGURATION.md: Throttle rules); checked at start.",
    (raw) => {
      if (raw.trim() === '') throw new Error('expected accept_all, mozilla or the path of a JSON rules file');
      return raw.trim();
    },
  ),
} as const;

type Settings = typeof settings;
export type Config = { [K in keyof Settings]: ReturnType<Settings[K]['parse']> };

/** Reads every setting from `env`; throws one ConfigError naming every bad variable. */
/**
 * One setting as the collector reads it (from `env`, else its default): for tools that need a
 * setting or two without the whole configuration (spool-inspect's spool). Throws ConfigError.
 */
export function settingValue<K extends keyof Settings>(name: K, env: NodeJS.ProcessEnv = process.env): Config[K] {
  const spec = settings[name] as unknown as Setting<Config[K]>;
  try {
    return spec.parse(env[spec.env] ?? spec.default);
  } catch (error) {
    throw new ConfigError(`${spec.env}: ${(error as Error).message}`);
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const config: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(settings) as [string, Setting<unknown>][]) {
    const raw = env[spec.env] ?? spec.default;
    try {
      config[name] = spec.parse(raw);
    } catch (error) {
      problems.push(`${spec.env}: ${(error as Error).message}`);
    }
  }
  const result = config as Config;
  if (problems.length === 0 && result.retryMaxSeconds < result.retryBaseSeconds) {
    problems.push('DRAIN_RETRY_MAX_SECONDS: must not be smaller than DRAIN_RETRY_BASE_SECONDS');
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return result;
}
