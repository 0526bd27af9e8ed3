import pg from 'pg';
import { connectClient } from '../postgres/connect';

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
): Promise<pg.Client> {
  return connectClient(url, applicationName, label, { types: TEXT_TYPES });
}
