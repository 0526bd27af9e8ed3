import pg from 'pg';
import { connectClient } from '../postgres/connect';
import { CATALOG_ONLY_SEARCH_PATH } from '../postgres/pinned-settings';

/** Keeps every column value as the server's text output: no Date, number or Buffer parsing. */
const TEXT_TYPES = {
  getTypeParser: () => (value: string) => value,
} as unknown as pg.CustomTypesConfig;

/**
 * Opens a connection whose results are PostgreSQL text, so values move between
 * databases unrounded (µs timestamps, numeric, int8, jsonb, arrays, bytea).
 * Its output settings are pinned (UTC, ISO dates, all float digits, hex bytea).
 */
export async function connectText(
  url: string,
  applicationName: string,
  label = 'database',
  settings: Readonly<Record<string, string>> = {},
  extra: Pick<pg.ClientConfig, 'pipeline'> = {},
): Promise<pg.Client> {
  return connectClient(url, applicationName, label, { types: TEXT_TYPES, ...extra }, settings);
}

/**
 * Connection options of the engine's target connection. Pipelined: node-postgres
 * sends each query as soon as it is made instead of after the previous one's answer,
 * so the target runs one apply statement after another without waiting a round trip
 * for the engine, while the engine decodes and batches the next changes
 * (`StagingWriter`). Answers still come in order, and a failed statement aborts the
 * transaction, so every statement after it fails too and nothing past it commits.
 */
export const ENGINE_TARGET_CONNECTION: Pick<pg.ClientConfig, 'pipeline'> = { pipeline: true };

/**
 * Session settings of the engine's target connection. The engine applies at READ
 * COMMITTED whatever the target's database or role default says: under REPEATABLE
 * READ or SERIALIZABLE a concurrent applier (DMS, another engine) moving the audit
 * chain's head makes a transaction fail with 40001 (see `lock_chain`), which the
 * engine would treat as fatal. READ COMMITTED sees the new head after the chain lock.
 *
 * search_path: pg_catalog only (pg_temp last, so no temporary table shadows a catalog).
 * The login's default path holds public, where every role may create objects on
 * PostgreSQL 13 and 14: DMS's login (writer alone) could plant a function whose argument
 * types match one of the engine's calls more exactly than pg_catalog's (`unnest(text[])`
 * over `unnest(anyarray)`), which would then run with the engine role's rights and move
 * its position on. The engine names every kit object with its schema, and staging
 * columns have built-in types only.
 */
export const ENGINE_TARGET_SETTINGS: Readonly<Record<string, string>> = {
  default_transaction_isolation: 'read committed',
  search_path: CATALOG_ONLY_SEARCH_PATH,
};
