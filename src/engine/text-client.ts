import pg from 'pg';

/** Keeps every column value as the server's text output: no Date, number or Buffer parsing. */
const TEXT_TYPES = {
  getTypeParser: () => (value: string) => value,
} as unknown as pg.CustomTypesConfig;

/**
 * Opens a connection whose results are PostgreSQL text, so values move between
 * databases unrounded (µs timestamps, numeric, int8, jsonb, arrays, bytea).
 * Its session time zone is UTC.
 */
export async function connectText(url: string, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    application_name: applicationName,
    types: TEXT_TYPES,
  });
  await client.connect();
  await client.query("SET TIME ZONE 'UTC'");
  return client;
}
