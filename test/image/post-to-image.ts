/**
 * For scripts/image-test: waits for the collector in the image to answer, posts one Crashpad-style
 * crash (two real minidumps), and checks the raw crash and both dumps reached its file storage byte
 * for byte. Usage: post-to-image.ts <collector URL> <storage directory on this machine>
 */
import { loadFixtureDumps } from '../helpers/fixtures.js';
import { crashIdFrom, postReport } from '../helpers/http-client.js';
import { makeReport } from '../helpers/multipart.js';
import { sleep } from '../helpers/raw-socket.js';
import { expectedFrom, fileReader, waitUntilStored } from '../helpers/stored-crashes.js';

const [baseUrl, storageDir] = process.argv.slice(2);
if (!baseUrl || !storageDir) throw new Error('usage: post-to-image.ts <collector URL> <storage directory>');

async function untilUp(deadline: number): Promise<void> {
  for (;;) {
    try {
      if ((await fetch(`${baseUrl}/__lbheartbeat__`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${baseUrl}/__lbheartbeat__ did not answer 200 within 30 s`);
    await sleep(200);
  }
}

await untilUp(Date.now() + 30_000);
const [first, second] = [...loadFixtureDumps().values()];
const report = makeReport('crashpad', first!, second);
const crashId = crashIdFrom(await postReport(baseUrl, report));
await waitUntilStored(fileReader(storageDir), crashId, expectedFrom(report));
console.error(`image-test: ${crashId} stored with both dumps, byte for byte`);
