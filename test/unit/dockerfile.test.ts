/**
 * The Dockerfile against the package's own files and the Kubernetes manifest that runs its image.
 * (scripts/image-test builds it with buildah and runs its entry point; this checks what a build
 * elsewhere relies on, in a second.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

interface Instruction {
  keyword: string;
  argument: string;
}

/** Instructions per stage, continuation lines joined; stage 0 holds what comes before the first FROM. */
function stages(dockerfile: string): Instruction[][] {
  const joined = dockerfile.replace(/\\\n/g, ' ');
  const result: Instruction[][] = [[]];
  for (const line of joined.split('\n')) {
    const match = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!match) continue;
    if (match[1] === 'FROM') result.push([]);
    result.at(-1)!.push({ keyword: match[1]!, argument: match[2]!.trim() });
  }
  return result;
}

const all = stages(read('Dockerfile'));
const final = all.at(-1)!;
const arg = (list: Instruction[], keyword: string) => list.filter((instruction) => instruction.keyword === keyword).map((instruction) => instruction.argument);
const finalEnv = new Map(arg(final, 'ENV').flatMap((line) => [...line.matchAll(/(\w+)=(\S*)/g)].map((match) => [match[1]!, match[2]!] as const)));
const pkg = JSON.parse(read('package.json')) as { main: string; engines: { node: string } };

/** The patterns of .dockerignore: everything is left out but what a `!` line lets in. */
function inContext(path: string): boolean {
  const lines = read('.dockerignore').split('\n').filter((line) => line && !line.startsWith('#'));
  assert.equal(lines[0], '*', '.dockerignore starts by leaving everything out');
  return lines.slice(1).some((line) => line.startsWith('!') && (path === line.slice(1).replace(/\/$/, '') || path.startsWith(line.slice(1))));
}

test('Dockerfile: every file it copies from the build context exists and is let in by .dockerignore', () => {
  const copies = all.flat().filter((instruction) => instruction.keyword === 'COPY' && !instruction.argument.startsWith('--from'));
  assert.ok(copies.length >= 4, 'package files, tsconfig, src and the build-info script');
  for (const copy of copies) {
    for (const source of copy.argument.split(/\s+/).slice(0, -1)) {
      assert.ok(existsSync(join(ROOT, source)), `${source} exists`);
      assert.ok(inContext(source), `${source} is in the build context (.dockerignore)`);
    }
  }
  assert.ok(!inContext('spool/crashes.db') && !inContext('node_modules') && !inContext('.git'), 'no spool, node_modules or .git in the context');
});

test("Dockerfile: the final image runs package.json's main as a numeric non-root user behind tini, with production dependencies only", () => {
  assert.deepEqual(JSON.parse(arg(final, 'CMD')[0]!), ['node', pkg.main]);
  assert.ok(existsSync(join(ROOT, pkg.main.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts'))), `${pkg.main} is built from src/`);
  assert.deepEqual(JSON.parse(arg(final, 'ENTRYPOINT')[0]!), ['/usr/bin/tini', '--']);
  assert.ok(arg(final, 'RUN').some((run) => /apt-get install .*\btini\b/.test(run)), 'tini installed in the final stage');
  assert.equal(arg(final, 'STOPSIGNAL')[0], 'SIGTERM');
  const [user] = arg(final, 'USER');
  assert.match(user!, /^[1-9]\d*:[1-9]\d*$/, 'numeric uid:gid, not root, so runAsNonRoot can check it');
  const modulesFrom = /--from=(\S+) \/app\/node_modules/.exec(arg(final, 'COPY').join('\n'))?.[1];
  const modulesStage = all.find((stage) => stage[0]?.keyword === 'FROM' && stage[0].argument.endsWith(` AS ${modulesFrom}`))!;
  assert.ok(arg(modulesStage, 'RUN').some((run) => run.startsWith('npm ci --omit=dev')), `node_modules from ${modulesFrom}: npm ci --omit=dev`);
});

test("Dockerfile: the default base image's Node is one package.json's engines accept", () => {
  const base = /^NODE_IMAGE=node:(\d+)-/.exec(arg(all[0]!, 'ARG')[0]!)?.[1];
  assert.ok(base, 'ARG NODE_IMAGE=node:<major>-… before the first FROM');
  assert.ok(pkg.engines.node.split('||').some((range) => range.trim().startsWith(`^${base}.`)), `node ${base} in engines ${pkg.engines.node}`);
});

test('Kubernetes manifest runs the image as the Dockerfile built it: working directory, user, ports, spool volume', () => {
  const set = parseAllDocuments(read('deploy/kubernetes.yaml'))
    .map((document) => document.toJS() as { kind: string; spec: any })
    .find((manifest) => manifest.kind === 'StatefulSet')!;
  const pod = set.spec.template.spec;
  const container = pod.containers[0];
  assert.equal(container.workingDir, arg(final, 'WORKDIR')[0]);
  assert.equal(`${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup}`, arg(final, 'USER')[0]);
  const ports = container.ports.map((port: { containerPort: number }) => String(port.containerPort)).sort();
  assert.deepEqual(ports, arg(final, 'EXPOSE')[0]!.split(' ').sort());
  assert.deepEqual(ports, [finalEnv.get('PORT'), finalEnv.get('METRICS_PORT')].sort());
  const [volume] = arg(final, 'VOLUME');
  assert.ok(finalEnv.get('SPOOL_DIR')!.startsWith(`${volume}/`), 'the image keeps its spool on its volume');
  assert.ok(container.volumeMounts.some((mount: { mountPath: string }) => mount.mountPath === volume), `the manifest mounts ${volume}`);
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);
});
