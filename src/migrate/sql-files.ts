import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { quoteIdent } from '../postgres/identifiers';
import { packageRoot } from '../support/package-root';

/** The SQL files under `triggers/`, in the order a fresh install runs them. */
export const TRIGGER_SQL_FILES = ['capture-change.sql', 'append-only.sql', 'api-row.sql'] as const;

export type TriggerSqlFile = (typeof TRIGGER_SQL_FILES)[number];

/**
 * Reads `triggers/<file>` and puts the quoted audit schema in place of
 * `{{audit_schema}}`. The schema name is quoted, so any name is safe.
 */
export function renderTriggerSql(file: TriggerSqlFile, auditSchema: string): string {
  const text = readFileSync(path.join(packageRoot(), 'triggers', file), 'utf8');
  return text.replaceAll('{{audit_schema}}', quoteIdent(auditSchema));
}

/** Runs a trigger SQL file (several statements) on `db`. */
export async function runTriggerSql(
  db: Kysely<unknown>,
  file: TriggerSqlFile,
  auditSchema: string,
): Promise<void> {
  await sql.raw(renderTriggerSql(file, auditSchema)).execute(db);
}
