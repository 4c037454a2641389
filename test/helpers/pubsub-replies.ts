/**
 * Pub/Sub REST replies a broken or hostile server gives, as FaultProxy `rewrite` modes in front of
 * the real Pub/Sub emulator. `topics.publish` is `{"messages": [{"data": "<base64>"}]}` and its
 * answer `{"messageIds": ["1", ...]}`, one per message in order. Requests that are not a publish
 * (health probes) pass unchanged.
 */
import type { FaultMode, RawAnswer } from './fault-proxy.js';

interface PublishRequest {
  messages: { data: string }[];
}

function publishOf(body: Buffer): PublishRequest {
  const parsed = JSON.parse(body.toString('utf8')) as Partial<PublishRequest>;
  if (!Array.isArray(parsed.messages)) throw new Error('not a publish');
  return parsed as PublishRequest;
}

const crashIdOf = (message: { data: string }) => Buffer.from(message.data, 'base64').toString('utf8');
const json = (status: number, value: unknown): RawAnswer => ({ status, body: Buffer.from(JSON.stringify(value)) });

/** Replaces a publish's answer (the messages did reach the topic). */
function rewriteAnswer(change: (answer: { messageIds?: string[] }) => unknown): FaultMode {
  return {
    kind: 'rewrite',
    answer(real, sentBody) {
      publishOf(sentBody);
      if (real.status !== 200) return real;
      const changed = change(JSON.parse(real.body.toString('utf8')) as { messageIds?: string[] });
      return typeof changed === 'string' ? { status: 200, body: Buffer.from(changed) } : json(200, changed);
    },
  };
}

export const pubsubReplies = {
  /** `200 {}`: an answer without message IDs. */
  accountsForNone: (): FaultMode => rewriteAnswer(() => ({})),
  /** One message ID fewer than messages sent. */
  dropsOne: (): FaultMode => rewriteAnswer((answer) => ({ messageIds: (answer.messageIds ?? []).slice(0, -1) })),
  /** A 200 whose body is not JSON. */
  garbage: (): FaultMode => rewriteAnswer(() => '<html>proxy error</html>'),
  /**
   * The topic refuses one crash ID (or each one `which` picks), every time: its message's data is
   * sent as something that is not base64, and the emulator itself refuses the call (400
   * INVALID_ARGUMENT), as Pub/Sub refuses a whole call for one bad message.
   */
  refuse(which: string | ((crashId: string) => boolean)): FaultMode {
    const refused = typeof which === 'string' ? (crashId: string) => crashId === which : which;
    return {
      kind: 'rewrite',
      request(body) {
        const sent = publishOf(body);
        if (!sent.messages.some((message) => refused(crashIdOf(message)))) return body;
        return Buffer.from(JSON.stringify({ messages: sent.messages.map((message) => (refused(crashIdOf(message)) ? { data: '!!not base64!!' } : message)) }));
      },
    };
  },
};
