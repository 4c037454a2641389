/** `spool-inspect requeue`: dead-letter crashes back to pending. */
import { requeueAllDead, requeueCrash } from '../../spool/operator/admin.js';
import { type Command, target, withSpool, operatorLogger } from '../command.js';
import { write, writeJson } from '../format.js';

export const requeue: Command = {
  name: 'requeue',
  brief: 'move dead-letter crashes back to pending (or stored)',
  synopsis: 'requeue <crash_id> | --all-dead',
  description: `Moves dead-letter crashes back to pending: attempts reset to 0, due at once, last error
kept. A crash that died waiting for the queue (in storage already, "dead (stored)" in list) goes
back to stored, to be announced. A running collector picks them up the next time its drainer looks for work (the next
crash received, or its next retry). A crash that is pending already, or stored (in storage,
waiting for the queue), is left as it is.`,
  options: { 'all-dead': { type: 'boolean' } },
  positionals: ['crash_id'],
  optionalPositionals: true,
  run(context) {
    const which = target(context);
    const result = withSpool(context.spoolDir, 'write', (spool) =>
      'allDead' in which ? requeueAllDead(spool) : requeueCrash(spool, which.crashId),
    );
    const logger = operatorLogger(context.spoolDir);
    for (const crashId of result.requeued) logger.info({ crash_id: crashId }, 'crash requeued by operator');
    if (context.json) {
      writeJson({ requeued: result.requeued, already_pending: result.alreadyPending, ...(result.stored ? { stored: result.stored } : {}) });
    } else if (result.stored?.length) {
      write(`crash ${result.stored.join(', ')} is in storage already, waiting for the queue; nothing to requeue`);
    } else if (result.alreadyPending.length > 0) {
      write(`crash ${result.alreadyPending.join(', ')} is pending already; nothing to requeue`);
    } else {
      write(
        result.requeued.length === 0
          ? 'no dead-letter crashes to requeue'
          : `requeued ${result.requeued.length} crash${result.requeued.length === 1 ? '' : 'es'}: ${result.requeued.join(', ')}`,
      );
    }
    return 0;
  },
};
