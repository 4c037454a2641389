/**
 * SQS-protocol replies a broken or hostile queue server gives, as FaultProxy `rewrite` modes in
 * front of the real SQS-protocol server (fauxqs). The AWS SDK speaks SQS's JSON protocol:
 * `SendMessageBatch` is `{"QueueUrl", "Entries": [{"Id", "MessageBody"}]}` and its answer
 * `{"Successful": [{"Id", "MessageId", "MD5OfMessageBody"}], "Failed": [{"Id", "SenderFault", "Code", "Message"}]}`.
 * Requests that are not a batch send (health probes) pass unchanged.
 */
import type { FaultMode, RawAnswer } from './fault-proxy.js';

interface BatchRequest {
  Entries: { Id: string; MessageBody: string }[];
}

interface BatchAnswer {
  Successful?: { Id: string; MessageId?: string; MD5OfMessageBody?: string }[];
  Failed?: { Id: string; SenderFault: boolean; Code: string; Message?: string }[];
}

function batchOf(body: Buffer): BatchRequest {
  const parsed = JSON.parse(body.toString('utf8')) as Partial<BatchRequest>;
  if (!Array.isArray(parsed.Entries)) throw new Error('not a SendMessageBatch');
  return parsed as BatchRequest;
}

const json = (status: number, value: unknown): RawAnswer => ({ status, body: Buffer.from(JSON.stringify(value)) });

/** Rewrites a batch's answer (the messages did reach the queue). */
function rewriteAnswer(change: (answer: BatchAnswer, sent: BatchRequest) => BatchAnswer | RawAnswer): FaultMode {
  return {
    kind: 'rewrite',
    answer(real, sentBody) {
      const sent = batchOf(sentBody);
      if (real.status !== 200) return real;
      const changed = change(JSON.parse(real.body.toString('utf8')) as BatchAnswer, sent);
      return 'status' in changed && Buffer.isBuffer(changed.body) ? (changed as RawAnswer) : json(200, changed);
    },
  };
}

export const sqsReplies = {
  /** The first confirmed entry comes back under an Id that was never sent. */
  unknownId: (): FaultMode => rewriteAnswer((answer) => ({ ...answer, Successful: (answer.Successful ?? []).map((entry, index) => (index === 0 ? { ...entry, Id: `x${entry.Id}9` } : entry)) })),
  /** `200 {}`: an answer that accounts for no entry. */
  accountsForNone: (): FaultMode => rewriteAnswer(() => ({})),
  /** The last entry is in neither list. */
  dropsOne: (): FaultMode => rewriteAnswer((answer) => ({ ...answer, Successful: (answer.Successful ?? []).slice(0, -1) })),
  /** A 200 whose body is not JSON. */
  garbage: (): FaultMode => rewriteAnswer(() => ({ status: 200, body: Buffer.from('<html>proxy error</html>') })),
  /**
   * The queue refuses one crash ID (or each one `which` picks), as its fault (`SenderFault: true`),
   * every time; the others of its batch are sent on and confirmed. A refused message never reaches
   * the queue.
   */
  refuse(which: string | ((crashId: string) => boolean), code = 'InvalidMessageContents'): FaultMode {
    const refused = typeof which === 'string' ? (crashId: string) => crashId === which : which;
    return {
      kind: 'rewrite',
      request(body) {
        const sent = batchOf(body);
        const kept = sent.Entries.filter((entry) => !refused(entry.MessageBody));
        if (kept.length === sent.Entries.length) return body;
        // None kept: an empty batch, which the server refuses as a whole (the answer is replaced).
        return Buffer.from(JSON.stringify({ ...JSON.parse(body.toString('utf8')), Entries: kept }));
      },
      answer(real, sentBody) {
        const gone = batchOf(sentBody).Entries.filter((entry) => refused(entry.MessageBody));
        if (gone.length === 0) return real;
        const answer = (real.status === 200 ? JSON.parse(real.body.toString('utf8')) : {}) as BatchAnswer;
        const failed = gone.map((entry) => ({ Id: entry.Id, SenderFault: true, Code: code, Message: 'refused by the fault proxy' }));
        return json(200, { Successful: (answer.Successful ?? []).filter((entry) => !gone.some((one) => one.Id === entry.Id)), Failed: [...(answer.Failed ?? []), ...failed] });
      },
    };
  },
};
