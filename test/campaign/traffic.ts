/**
 * The campaign's traffic: clients of every style posting all along, across kills, restarts and
 * outages, as real ones do — Breakpad, Crashpad and Electron (gzip, chunked, `?token=` in the URL),
 * Firefox (JSON extra, `Authorization: Bearer`), a stage submitter that chooses its crash IDs, a
 * sender with a wrong token — retrying the same report after a refusal, a 503 or a cut
 * connection, and now and then once more after an acknowledgement (its answer "lost"). One more
 * client sends the fuzz generator's hostile reports. Every answer is checked when it arrives;
 * a request with no answer is a problem unless a kill came while it was in flight.
 */
import { createHash } from 'node:crypto';
import { newCrashId } from '../../src/crash-id.js';
import { crashIdFrom, postReport, type Answer } from '../helpers/http-client.js';
import { makeReport, multipart, type ClientStyle, type Report } from '../helpers/multipart.js';
import { seededRandom } from '../helpers/random.js';
import { expectedFrom, type Expected } from '../helpers/stored-crashes.js';
import { generateCase } from '../fuzz/generator.js';
import { answerProblem, caseRandom, postCase, type Reply } from '../fuzz/harness.js';

export type TrafficStyle = ClientStyle | 'stage submitter' | 'hostile';

export interface AckedCrash {
  crashId: string;
  style: TrafficStyle;
  /** What was sent; undefined for hostile reports (checked against the checksums taken at receipt). */
  expected?: Expected;
  /** The report it answers: a retry of the same report may share a crash ID, nothing else may. */
  report: string;
  at: number;
  life: number;
  purged: boolean;
}

export interface TrafficOptions {
  port: number;
  seed: number;
  clients: number;
  /** The token of every client but the wrong-token one, and the stage submitter's. */
  token: string;
  stageToken: string;
  dumps: Buffer[];
  /** Dumps for the hostile client: small ones, so the cases stay quick. */
  smallDumps: Buffer[];
  /** The collector life now running (bumped when a kill is decided, before the signal). */
  life: () => number;
  /** True from a kill's decision until the next collector listens. */
  down: () => boolean;
}

const STYLES: ClientStyle[] = ['breakpad', 'crashpad', 'mozilla', 'electron'];
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface Outgoing {
  report: Report;
  key: string;
  style: TrafficStyle;
  headers: Record<string, string>;
  /** The crash ID a stage submitter chose. */
  chosenId?: string;
  /** The wrong-token client: only `401 Discarded=unauthorized` is right. */
  unauthorized?: boolean;
}

export class Traffic {
  readonly acked = new Map<string, AckedCrash>();
  readonly answers: Record<string, number> = {};
  readonly problems: string[] = [];
  /** When each acknowledgement arrived (for acks per second). */
  readonly ackTimes: number[] = [];
  readonly retries = { afterAck: 0, sameIdAfterAck: 0, newIdAfterAck: [] as { first: string; second: string }[] };
  /** Hostile reports answered with the crash ID of an earlier, different hostile body (the same report by its identity). */
  hostileRepeats = 0;
  hostileSent = 0;
  private stopping = false;
  private requests = 0;
  private readonly inFlight = new Map<number, { what: string; since: number }>();
  private readonly loops: Promise<void>[] = [];
  private reports = 0;

  constructor(private readonly options: TrafficOptions) {}

  start(): void {
    for (let index = 0; index < this.options.clients; index += 1) this.loops.push(this.client(index));
    this.loops.push(this.hostileClient());
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private count(what: string): void {
    this.answers[what] = (this.answers[what] ?? 0) + 1;
  }

  private outgoing(random: () => number): Outgoing {
    const { dumps, token, stageToken } = this.options;
    const dump = random() < 0.04 ? dumps.reduce((a, b) => (a.length > b.length ? a : b)) : dumps[Math.floor(random() * dumps.length)]!;
    const key = `report ${(this.reports += 1)}`;
    const roll = random();
    if (roll < 0.05) {
      const chosenId = newCrashId(new Date());
      const annotations = { ProductName: 'StageApp', Version: '9.0', uuid: chosenId };
      const built = multipart([...Object.entries(annotations).map(([name, value]) => ({ name, value })), { name: 'upload_file_minidump', filename: 'stage.dmp', data: dump }]);
      const report: Report = { style: 'breakpad', annotations, dumps: { upload_file_minidump: dump }, ...built, gzip: false, query: `?token=${stageToken}` };
      return { report, key, style: 'stage submitter', headers: {}, chosenId };
    }
    const style = STYLES[Math.floor(random() * STYLES.length)]!;
    const report = makeReport(style, dump, dumps[Math.floor(random() * dumps.length)]);
    if (roll < 0.08) return { report, key, style, headers: { Authorization: 'Bearer not-a-token-anyone-was-given' }, unauthorized: true };
    if (style === 'mozilla') return { report, key, style, headers: { Authorization: `Bearer ${token}` } };
    return { report: { ...report, query: `${report.query}${report.query ? '&' : '?'}token=${token}` }, key, style, headers: {} };
  }

  /**
   * Posts; on no answer, says whether a kill explains it: the collector was down (from a kill's
   * decision until the next one listens) when the request was sent or when it failed, or a kill
   * came meanwhile. Anything else is a problem.
   */
  private async send<T>(post: () => Promise<T>, what: string): Promise<T | 'refused' | 'cut'> {
    const life = this.options.life();
    const downAtSend = this.options.down();
    const id = (this.requests += 1);
    this.inFlight.set(id, { what, since: Date.now() });
    try {
      return await post();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      const killed = this.options.life() !== life || downAtSend || this.options.down();
      if (killed) {
        this.count(code === 'ECONNREFUSED' ? 'no answer: connection refused (collector down)' : 'no answer: cut by a kill');
        return code === 'ECONNREFUSED' ? 'refused' : 'cut';
      }
      this.count('no answer, no kill');
      this.problems.push(`${what}: no answer (${code}) while the collector listened and no kill came (life ${life})`);
      return 'cut';
    } finally {
      this.inFlight.delete(id);
    }
  }

  /** Requests in flight longer than `ms` (a kill is about to cut them, which would hide that they hung). */
  reportHangs(ms: number): void {
    const now = Date.now();
    for (const [id, request] of this.inFlight) {
      if (now - request.since <= ms) continue;
      this.problems.push(`${request.what}: no answer ${((now - request.since) / 1000).toFixed(1)} s after it was sent, with the collector listening`);
      this.inFlight.delete(id);
    }
  }

  private record(crashId: string, report: string, style: TrafficStyle, expected: Expected | undefined): void {
    const earlier = this.acked.get(crashId);
    if (earlier && earlier.report !== report) {
      if (earlier.style === 'hostile' && style === 'hostile') {
        this.hostileRepeats += 1;
        return;
      }
      this.problems.push(`crash ID ${crashId} answered for two different reports: ${earlier.report} (${earlier.style}) and ${report} (${style})`);
      return;
    }
    this.ackTimes.push(Date.now());
    if (earlier) return;
    this.acked.set(crashId, {
      crashId,
      style,
      ...(expected ? { expected } : {}),
      report,
      at: Date.now(),
      life: this.options.life(),
      purged: false,
    });
  }

  private async client(index: number): Promise<void> {
    const random = seededRandom((this.options.seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
    let outgoing = this.outgoing(random);
    let tries = 0;
    let retryAfterAck: string | undefined;
    while (!this.stopping) {
      const answer = await this.send(() => postReport(`http://127.0.0.1:${this.options.port}`, outgoing.report, outgoing.headers), outgoing.key);
      tries += 1;
      const again = typeof answer === 'string' || answer.status === 503;
      if (typeof answer !== 'string') this.count(`${answer.status}${answer.status === 200 && !answer.body.startsWith('CrashID=') ? ` ${answer.body.trim()}` : ''}`);
      if (typeof answer !== 'string') this.check(answer, outgoing, retryAfterAck);
      if (again && tries < 40 && random() < 0.9) {
        // Refused: the collector is down; a real client waits longer than for a 503 or a cut.
        await sleep(answer === 'refused' ? 100 + random() * 150 : 20 + random() * 60);
        continue;
      }
      if (!again && answer.status === 200 && retryAfterAck === undefined && random() < 0.06) {
        // The client never saw this answer (a proxy cut it): it sends the same report again.
        retryAfterAck = /CrashID=bp-(\S+)/.exec(answer.body)?.[1];
        if (retryAfterAck !== undefined) {
          this.retries.afterAck += 1;
          continue;
        }
      }
      outgoing = this.outgoing(random);
      tries = 0;
      retryAfterAck = undefined;
      await sleep(random() * 30);
    }
  }

  private check(answer: Answer, outgoing: Outgoing, retryOf: string | undefined): void {
    if (answer.status === 503) {
      if (answer.headers['retry-after'] === undefined) this.problems.push(`${outgoing.key}: 503 without Retry-After`);
      return;
    }
    if (outgoing.unauthorized) {
      if (answer.status !== 401 || answer.body.trim() !== 'Discarded=unauthorized') this.problems.push(`${outgoing.key} (wrong token): ${answer.status} ${answer.body.slice(0, 100)}`);
      return;
    }
    let crashId: string;
    try {
      crashId = crashIdFrom(answer);
    } catch (error) {
      this.problems.push(`${outgoing.key} (${outgoing.style}): ${(error as Error).message.slice(0, 200)}`);
      return;
    }
    if (outgoing.chosenId !== undefined && crashId !== outgoing.chosenId) this.problems.push(`${outgoing.key}: chose ${outgoing.chosenId}, answered ${crashId}`);
    if (retryOf !== undefined) {
      if (crashId === retryOf) this.retries.sameIdAfterAck += 1;
      else this.retries.newIdAfterAck.push({ first: retryOf, second: crashId });
    }
    this.record(crashId, outgoing.key, outgoing.style, expectedFrom(outgoing.report));
  }

  private async hostileClient(): Promise<void> {
    const seed = (this.options.seed ^ 0x5bd1e995) >>> 0;
    const pause = seededRandom(seed);
    for (let index = 0; !this.stopping; index += 1) {
      const testCase = generateCase(caseRandom(seed, index), this.options.smallDumps);
      testCase.headers['Authorization'] = `Bearer ${this.options.token}`;
      const key = `hostile ${index} (${sha256(testCase.body).slice(0, 16)})`;
      this.hostileSent += 1;
      const reply = await this.send(() => postCase(this.options.port, testCase), `${key} [${testCase.steps.join(' | ')}]`);
      if (typeof reply !== 'string') this.checkHostile(reply, key, testCase.steps);
      await sleep(reply === 'refused' ? 100 + pause() * 150 : pause() * 40);
    }
  }

  private checkHostile(reply: Reply, key: string, steps: string[]): void {
    this.count(`hostile ${reply.status}`);
    const problem = answerProblem(reply);
    if (problem) {
      this.problems.push(`${key} [${steps.join(' | ')}]: ${problem}`);
      return;
    }
    const crashId = /^CrashID=bp-(\S+)/.exec(reply.body)?.[1];
    if (crashId) this.record(crashId, key, 'hostile', undefined);
  }
}
