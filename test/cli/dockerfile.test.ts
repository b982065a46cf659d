/**
 * The Dockerfiles' structure, since no Docker engine runs here: multi-stage, a node:24-slim runtime
 * with production dependencies only, a non-root user, a health check against /healthz, and an
 * entrypoint that runs an analysis file which the build produces. COPY sources must exist.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './run-cli.js';

interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Instructions of a Dockerfile: continuation lines joined, comments and blank lines dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending === '') start = i + 1;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const [op, ...rest] = full.split(/\s+/);
    out.push({ op: op.toUpperCase(), args: rest.join(' '), line: start });
  });
  return out;
}

interface Stage {
  image: string;
  name?: string;
  body: Instruction[];
}

function stages(instructions: Instruction[]): Stage[] {
  const out: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      out.push({ image: m[1], name: m[2], body: [] });
    } else if (out.length > 0) {
      out[out.length - 1].body.push(ins);
    }
  }
  return out;
}

/** `["a", "b"]` (exec form) as a list; undefined for the shell form. */
function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  return JSON.parse(args) as string[];
}

/** The TypeScript source a `dist/**.js` path is compiled from. */
function sourceOf(distPath: string): string {
  return distPath.replace(/^dist\//, '').replace(/\.js$/, '.ts');
}

function checkDockerfile(context: string, { missingOk = [] as string[] } = {}): { entry: string[]; runtime: Stage } {
  const all = stages(parseDockerfile(fs.readFileSync(path.join(context, 'Dockerfile'), 'utf8')));
  expect(all.length).toBeGreaterThanOrEqual(2);
  const runtime = all[all.length - 1];
  const build = all[0];
  expect(runtime.image).toBe('node:24-slim');
  expect(build.name).toBeDefined();
  const ops = (s: Stage, op: string) => s.body.filter((i) => i.op === op);

  // the build stage compiles; the runtime stage installs production dependencies only and takes the build output
  expect(ops(build, 'RUN').some((i) => /npm run build|tsc/.test(i.args))).toBe(true);
  expect(ops(runtime, 'RUN').some((i) => /\bnpm ci\b.*--omit=dev/.test(i.args))).toBe(true);
  expect(ops(runtime, 'RUN').some((i) => /\bnpm (ci|install)\b(?!.*--omit=dev)/.test(i.args))).toBe(false);
  expect(ops(runtime, 'COPY').some((i) => i.args.startsWith(`--from=${build.name} `) && /\bdist\b/.test(i.args))).toBe(true);
  expect(ops(runtime, 'COPY').some((i) => /^src\b|\ssrc\b/.test(i.args) && !i.args.startsWith('--from'))).toBe(false);

  // every COPY source from the context exists (package-lock.json of a fresh template is made by npm install)
  for (const stage of all) {
    for (const copy of ops(stage, 'COPY').filter((i) => !i.args.startsWith('--from'))) {
      const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        if (missingOk.includes(src)) continue;
        expect([src, fs.existsSync(path.join(context, src))]).toEqual([src, true]);
      }
    }
  }

  // the build stage copies every folder the build compiles (tsconfig.build.json's include)
  const buildConfig = path.join(context, 'tsconfig.build.json');
  if (fs.existsSync(buildConfig)) {
    const included = (JSON.parse(fs.readFileSync(buildConfig, 'utf8')) as { include: string[] }).include;
    const copied = ops(build, 'COPY').flatMap((i) => i.args.split(/\s+/).slice(0, -1)).map((p) => p.replace(/^\.\//, '').replace(/\/$/, ''));
    for (const folder of included) expect([folder, copied.includes(folder)]).toEqual([folder, true]);
  }

  // a non-root user, set after the last RUN
  const users = ops(runtime, 'USER');
  expect(users).toHaveLength(1);
  expect(users[0].args).not.toMatch(/^(root|0)(:|$)/);
  const lastRun = Math.max(...ops(runtime, 'RUN').map((i) => runtime.body.indexOf(i)));
  expect(runtime.body.indexOf(users[0])).toBeGreaterThan(lastRun);

  // a health check against /healthz on the port the SDK serves it (FLAME_HEALTH_PORT), which is exposed
  const health = ops(runtime, 'HEALTHCHECK');
  expect(health).toHaveLength(1);
  expect(health[0].args).toMatch(/\bCMD\b.*\/healthz/);
  const env = ops(runtime, 'ENV').map((i) => i.args).join(' ');
  const port = /FLAME_HEALTH_PORT=(\d+)/.exec(env)?.[1];
  expect(port).toBeDefined();
  expect(ops(runtime, 'EXPOSE').map((i) => i.args)).toContain(port);

  const entrypoints = ops(runtime, 'ENTRYPOINT');
  expect(entrypoints).toHaveLength(1);
  const entry = execForm(entrypoints[0].args);
  expect(entry).toBeDefined();
  return { entry: entry!, runtime };
}

test("the SDK's Dockerfile", () => {
  const { entry, runtime } = checkDockerfile(REPO_ROOT);
  // `sh -c 'exec node dist/apps/cli/main.js run "$ANALYSIS"'`: the CLI's run command on the analysis in $ANALYSIS
  const script = entry.join(' ');
  expect(script).toMatch(/exec node dist\/apps\/cli\/main\.js run "\$ANALYSIS"/);
  expect(fs.existsSync(path.join(REPO_ROOT, sourceOf('dist/apps/cli/main.js')))).toBe(true);
  const analysis = /ANALYSIS=(\S+)/.exec(runtime.body.filter((i) => i.op === 'ENV').map((i) => i.args).join(' '))?.[1];
  expect(analysis).toMatch(/^dist\/.+\.js$/);
  expect(fs.existsSync(path.join(REPO_ROOT, sourceOf(analysis!)))).toBe(true);
});

test("the analysis template's Dockerfile", () => {
  const context = path.join(REPO_ROOT, 'templates', 'analysis');
  const { entry } = checkDockerfile(context, { missingOk: ['package-lock.json', '.npmrc'] });
  // the template ships `_npmrc`, which `flame init` turns into .npmrc
  expect(fs.existsSync(path.join(context, '_npmrc'))).toBe(true);
  expect(entry).toEqual(['node', 'node_modules/flame-sdk/dist/apps/cli/main.js', 'run', 'dist/src/main.js']);
  expect(fs.existsSync(path.join(context, sourceOf('dist/src/main.js')))).toBe(true);
  // the path the entrypoint runs is where this package's build puts its CLI
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  expect(`node_modules/flame-sdk/${pkg.bin.flame}`).toBe(entry[1]);
});

test('the parser joins continuation lines and skips comments', () => {
  const ins = parseDockerfile('# c\nFROM a AS b\nRUN x \\\n  && y\n\nUSER u\n');
  expect(ins).toEqual([
    { op: 'FROM', args: 'a AS b', line: 2 },
    { op: 'RUN', args: 'x && y', line: 3 },
    { op: 'USER', args: 'u', line: 6 },
  ]);
});
