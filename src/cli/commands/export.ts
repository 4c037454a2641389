/** `spool-inspect export`: one crash's raw_crash.json and dumps, bytes exactly as spooled. */
import { resolve } from 'node:path';
import { exportCrash } from '../../spool/operator/queries.js';
import { type Command, crashIdArgument, withSpool } from '../command.js';
import { write, writeJson, formatBytes, table } from '../format.js';

export const exportCommand: Command = {
  name: 'export',
  brief: 'write raw_crash.json and the dumps into a directory',
  synopsis: 'export <crash_id> <dir>',
  description: `Writes the crash into <dir> (created when missing): raw_crash.json and each dump as
<dump_name>.dmp, bytes exactly as spooled, to examine it or re-submit it by hand. Never
overwrites a file. A crash in storage already (waiting for the queue, or dead after it refused)
keeps only its raw crash in the spool: its dumps are read from storage (v1/dump/<id>, v1/<dump_name>/<id>),
and the output names them.`,
  options: {},
  positionals: ['crash_id', 'dir'],
  run(context) {
    const crashId = crashIdArgument(context.positionals[0]);
    const dir = resolve(context.positionals[1]!);
    const { files, dumpsInStorage } = withSpool(context.spoolDir, 'read', (spool) => exportCrash(spool, crashId, dir));
    if (context.json) {
      writeJson({ crash_id: crashId, dir, files, dumps_in_storage: dumpsInStorage });
    } else {
      write(
        [
          `exported crash ${crashId} to ${dir}`,
          table(
            ['FILE', 'SIZE', 'SHA256'],
            files.map((file) => [file.path, formatBytes(file.bytes), file.sha256]),
            new Set([1]),
          ),
          ...(dumpsInStorage.length > 0 ? [`in storage already, not in the spool: ${dumpsInStorage.join(', ')} (the crash is stored; its dumps left the spool)`] : []),
        ].join('\n'),
      );
    }
    return 0;
  },
};
