import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';

/**
 * The TypeScript a user pastes from README.md (every ```ts block) and the examples/
 * files they copy must compile against the package's public types: the `types` of its
 * `exports` map (`dist/`, as `npm install audit-trail-kit` installs them), in a project
 * of their own with strict settings. A block that uses names it does not declare
 * (`db`, `config`, ...) says so in a marker on the line above its fence,
 *
 *     <!-- ts-snippet given: db, config -->
 *
 * and each given name is declared with a realistic type (GIVENS below): nothing is
 * skipped, and a marker that names something the block does not use fails too.
 */

const ROOT = path.resolve(__dirname, '../..');
const MARKER = /^<!-- ts-snippet given: ([\w, ]+) -->$/;

/** What each given name is, in the user's project (imports aliased, so a block may import the same names). */
const GIVENS: Readonly<Record<string, string>> = {
  db: `import type { Kysely as G_Kysely } from 'kysely';\ndeclare const db: G_Kysely<{ items: { id: number; name: string; price: string } }>;`,
  pool: `import type { Pool as G_Pool } from 'pg';\ndeclare const pool: G_Pool;`,
  user: 'declare const user: { id: string };',
  req: 'declare const req: { id: string };',
  customer: 'declare const customer: { id: string };',
  ip: 'declare const ip: string;',
  config: `import type { AuditTrailConfig as G_Config } from 'audit-trail-kit';\ndeclare const config: G_Config;`,
  sourceUrl: 'declare const sourceUrl: string;',
  targetUrl: 'declare const targetUrl: string;',
  versionA: `import type { Version as G_Version } from 'audit-trail-kit';\ndeclare const versionA: G_Version<{ id: number; name: string; price: string }>;`,
  versionB: `import type { Version as G_VersionB } from 'audit-trail-kit';\ndeclare const versionB: G_VersionB<{ id: number; name: string; price: string }>;`,
};

/** The `.ts` config the README's source-context block imports (`import config from './audit-trail.config'`). */
const CONFIG_MODULE = `import type { AuditTrailConfigInput } from 'audit-trail-kit';
export default {
  tables: [{ schema: 'public', table: 'items' }],
  sourceContext: { require: ['actor'] },
} satisfies AuditTrailConfigInput;
`;

interface Snippet {
  /** `README.md:701`: the file and line of its opening fence. */
  readonly name: string;
  readonly code: string;
  readonly givens: readonly string[];
}

/** Every ```ts (or ```typescript) block of a Markdown file, with the givens its marker names. */
function markdownSnippets(file: string, text: string): Snippet[] {
  const lines = text.split('\n');
  const snippets: Snippet[] = [];
  for (let index = 0; index < lines.length; index++) {
    const fence = /^(\s*)```(ts|typescript)\s*$/.exec(lines[index]!);
    if (!fence) continue;
    const indent = fence[1]!.length;
    const end = lines.findIndex((line, at) => at > index && /^\s*```\s*$/.test(line));
    if (end < 0) throw new Error(`${file}:${index + 1}: a \`\`\`ts block is not closed`);
    const marker = MARKER.exec((lines[index - 1] ?? '').trim());
    snippets.push({
      name: `${file}:${index + 1}`,
      code: lines
        .slice(index + 1, end)
        .map((line) => line.slice(indent))
        .join('\n'),
      givens: marker ? marker[1]!.split(',').map((given) => given.trim()) : [],
    });
    index = end;
  }
  return snippets;
}

function filesUnder(dir: string, ending: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith(ending))
    .map((file) => path.join(dir, file))
    .sort();
}

const relative = (file: string) => path.relative(ROOT, file);
const markdown = [path.join(ROOT, 'README.md'), ...filesUnder(path.join(ROOT, 'examples'), '.md')];
const snippets = markdown.flatMap((file) =>
  markdownSnippets(relative(file), readFileSync(file, 'utf8')),
);
const exampleFiles = filesUnder(path.join(ROOT, 'examples'), '.ts');

/**
 * A user's project in a temp dir: the kit installed under its package name (a link to
 * this checkout, so its `exports` map and built types are what resolves), every other
 * package linked from this checkout's node_modules.
 */
function userProject(): string {
  if (!existsSync(path.join(ROOT, 'dist/src/index.d.ts')))
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  const project = mkdtempSync(path.join(tmpdir(), 'audit-trail-snippets-'));
  const modules = path.join(project, 'node_modules');
  mkdirSync(modules);
  for (const entry of readdirSync(path.join(ROOT, 'node_modules'))) {
    if (entry.startsWith('.')) continue;
    symlinkSync(path.join(ROOT, 'node_modules', entry), path.join(modules, entry));
  }
  symlinkSync(ROOT, path.join(modules, 'audit-trail-kit'));
  writeFileSync(
    path.join(project, 'package.json'),
    JSON.stringify({ name: 'user-app', private: true }),
  );
  writeFileSync(path.join(project, 'audit-trail.config.ts'), CONFIG_MODULE);
  return project;
}

interface Diagnostic {
  /** Relative to the project; none for a diagnostic about no file. */
  readonly file?: string;
  readonly line: number;
  readonly message: string;
}

/** The diagnostics of one strict program over `files`. */
function compile(project: string, files: readonly string[]): Diagnostic[] {
  const program = ts.createProgram(files, {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts'],
    types: ['node'],
    typeRoots: [path.join(project, 'node_modules/@types')],
    esModuleInterop: true,
    skipLibCheck: true,
  });
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    if (!diagnostic.file || diagnostic.start === undefined) return { line: 0, message };
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
    return { file: path.relative(project, diagnostic.file.fileName), line: line + 1, message };
  });
}

describe('TypeScript a user copies from the README and examples/', () => {
  let project: string;
  let errors: Map<string, string[]>;

  beforeAll(() => {
    project = userProject();
    const files = new Map<string, string>();
    snippets.forEach((snippet, index) => {
      // The block first, so a diagnostic's line is the block's own line.
      const unknown = snippet.givens.filter((given) => !(given in GIVENS));
      if (unknown.length > 0)
        throw new Error(
          `${snippet.name}: the marker gives ${unknown.join(', ')}, unknown to GIVENS`,
        );
      const declarations = snippet.givens.map((given) => GIVENS[given]!).join('\n');
      const file = path.join(project, `snippet-${index}.ts`);
      writeFileSync(file, `${snippet.code}\n${declarations}\nexport {};\n`);
      files.set(file, snippet.name);
    });
    for (const example of exampleFiles) {
      const file = path.join(project, relative(example));
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, readFileSync(example, 'utf8'));
      files.set(file, relative(example));
    }
    errors = new Map([...files.values()].map((name) => [name, []]));
    const names = new Map([...files].map(([file, name]) => [path.relative(project, file), name]));
    for (const { file, line, message } of compile(project, [...files.keys()])) {
      const name = names.get(file ?? '') ?? 'elsewhere';
      // A block's line n is the Markdown file's line (fence + n); an example's is its own.
      const [source, fence] = name.split(':');
      const where = fence ? `${source}:${Number(fence) + line}` : `${file ?? '-'}:${line}`;
      errors.set(name, [...(errors.get(name) ?? []), `${where}: ${message}`]);
    }
  }, 120_000);

  afterAll(() => {
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it('finds the README blocks and the example files', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(4);
    expect(exampleFiles.map(relative)).toEqual(
      expect.arrayContaining(['examples/local/run.ts', 'examples/history-queries.ts']),
    );
  });

  it.each(
    snippets.map(
      (snippet) => [snippet.name, snippet.givens.join(', ') || 'nothing', snippet] as const,
    ),
  )('%s compiles (given %s)', (_name, _givens, snippet) => {
    expect(errors.get(snippet.name)).toEqual([]);
    for (const given of snippet.givens)
      expect(snippet.code, `${snippet.name} gives ${given} but does not use it`).toMatch(
        new RegExp(`\\b${given}\\b`),
      );
  });

  it.each(exampleFiles.map(relative))('%s compiles against the published types', (name) => {
    expect(errors.get(name)).toEqual([]);
  });

  it('reports nothing outside the blocks and the examples', () => {
    expect(errors.get('elsewhere') ?? []).toEqual([]);
  });
});
