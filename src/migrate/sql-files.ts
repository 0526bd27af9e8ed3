import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { formatTextArray, quoteIdent, quoteLiteral } from '../postgres/identifiers';
import { PINNED_OUTPUT_SETTINGS } from '../postgres/pinned-settings';
import { HEADER_COLUMN_NAMES } from '../staging/header-columns';
import { packageRoot } from '../support/package-root';
import { canonicalBlockHeaderSql, canonicalRowSql } from '../trust/canonical';

/**
 * The repeatable SQL under `triggers/`, in the order it is installed. Each file must be
 * re-runnable on an install that has any earlier version of it (`CREATE OR REPLACE`).
 */
export const TRIGGER_SQL_FILES = [
  'trust.sql',
  'capture-change.sql',
  'append-only.sql',
  'api-row.sql',
  'schema-change-log.sql',
  'engine-position.sql',
] as const;

export type TriggerSqlFile = (typeof TRIGGER_SQL_FILES)[number];

/** The kit table recording which version (checksum) of each SQL file is installed. */
export const KIT_SQL_FILE_TABLE = 'kit_sql_file';

/**
 * `SET` clauses, one a line, pinning {@link PINNED_OUTPUT_SETTINGS} in a function that
 * renders row or key values as text: DMS's sessions on the target take the database's
 * and role's settings, which the kit cannot pin for them as it pins its own connections'.
 *
 * @example
 * ```ts
 * pinnedSettingsClauses({ TimeZone: 'UTC' }); // "SET TimeZone = 'UTC'"
 * ```
 */
export function pinnedSettingsClauses(
  settings: Readonly<Record<string, string>> = PINNED_OUTPUT_SETTINGS,
): string {
  return Object.entries(settings)
    .map(([name, value]) => {
      // A setting name cannot be quoted in a SET clause as a value can; the list is the
      // kit's own, so anything but a plain name is a programming error.
      if (!/^[A-Za-z_]+$/.test(name)) throw new Error(`not a setting name: ${name}`);
      return `SET ${name} = ${quoteLiteral(value)}`;
    })
    .join('\n');
}

/**
 * Reads `triggers/<file>` and fills its placeholders: `{{audit_schema}}` (the quoted
 * audit schema), `{{audit_schema_literal}}` (that, as a string literal),
 * `{{header_columns}}`, `{{pinned_output_settings}}` ({@link pinnedSettingsClauses})
 * and the canonical texts of the hash chain. Every name is quoted, so any schema name
 * is safe. What `migrate` installs, and what its checksums and the kit version cover,
 * is this rendered text: a change to a placeholder's source reinstalls the file.
 */
export function renderTriggerSql(file: TriggerSqlFile, auditSchema: string): string {
  const text = readFileSync(path.join(packageRoot(), 'triggers', file), 'utf8');
  // Function bodies are dollar-quoted with $function$; a schema name containing that tag
  // would end a body early, so the tag becomes one the name does not contain.
  let tag = '$function$';
  for (let n = 1; auditSchema.includes(tag); n += 1) tag = `$function_${n}$`;
  const values: readonly (readonly [string, string])[] = [
    ['{{audit_schema_literal}}', quoteLiteral(quoteIdent(auditSchema))],
    ['{{header_columns}}', quoteLiteral(formatTextArray(HEADER_COLUMN_NAMES))],
    ['{{pinned_output_settings}}', pinnedSettingsClauses()],
    ['{{canonical_row}}', canonicalRowSql('a')],
    ['{{canonical_block_header}}', canonicalBlockHeaderSql('b')],
    ['{{audit_schema}}', quoteIdent(auditSchema)],
  ];
  const fill = (line: string) =>
    values.reduce((filled, [placeholder, value]) => filled.replaceAll(placeholder, value), line);
  // Comment lines keep their placeholders: a quoted name may hold a line break, and in a
  // `--` comment everything after it would be SQL ('audit\nDROP ...' is a valid name).
  // Placeholders stand only on code lines or whole comment lines (a test checks the files).
  return text
    .replaceAll('$function$', tag)
    .split('\n')
    .map((line) => (COMMENT_LINE.test(line) ? line : fill(line)))
    .join('\n');
}

/** A line that is only a `--` comment. */
const COMMENT_LINE = /^\s*--/;

/** sha256 (hex) of a rendered SQL file: what {@link installKitSql} compares. */
export function sqlChecksum(renderedSql: string): string {
  return createHash('sha256').update(renderedSql).digest('hex');
}

/**
 * Installs each SQL file whose checksum differs from the one recorded in
 * `<auditSchema>.kit_sql_file` (every file on a first install or after an upgrade that
 * changed it), or every file when `all` is set, and records the new checksums. Run it in
 * the migrate transaction, after the versioned migrations.
 * @returns the files installed, in install order
 */
export async function installKitSql(
  db: Kysely<unknown>,
  auditSchema: string,
  options: { readonly all?: boolean } = {},
): Promise<TriggerSqlFile[]> {
  const { rows } = await sql<{ file: string; checksum: string }>`
    SELECT file, checksum FROM ${sql.id(auditSchema, KIT_SQL_FILE_TABLE)}`.execute(db);
  const installed = new Map(rows.map((row) => [row.file, row.checksum]));
  const changed: TriggerSqlFile[] = [];
  for (const file of TRIGGER_SQL_FILES) {
    const text = renderTriggerSql(file, auditSchema);
    const checksum = sqlChecksum(text);
    if (!options.all && installed.get(file) === checksum) continue;
    await sql.raw(text).execute(db);
    await sql`
      INSERT INTO ${sql.id(auditSchema, KIT_SQL_FILE_TABLE)} (file, checksum) VALUES (${file}, ${checksum})
      ON CONFLICT (file) DO UPDATE SET checksum = excluded.checksum, installed_at = clock_timestamp()`.execute(
      db,
    );
    changed.push(file);
  }
  return changed;
}
