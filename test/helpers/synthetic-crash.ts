import type { Crash } from '../../src/crash.js';

/** A small crash as the intake makes one, for tests that write the spool directly: one dump naming its crash. */
export function syntheticCrash(crashId: string): Crash {
  return {
    crashId,
    receivedAt: Date.now(),
    rawCrash: {
      submitted_timestamp: new Date().toISOString(),
      uuid: crashId,
      version: 2,
      metadata: { collector_notes: [], dump_checksums: {}, payload: 'multipart', payload_compressed: '0', payload_size: 0, throttle_rule: 'accept_everything', user_agent: 'test' },
    },
    dumps: [{ name: 'upload_file_minidump', data: Buffer.from(`dump of ${crashId}`) }],
  };
}
