import type pg from 'pg';

/**
 * The server's `server_version_num` (`150004` for 15.4), the one statement every version
 * check reads it with. Schema-qualified, so a `current_setting` planted earlier on the
 * search path is never the one called.
 *
 * @example
 * const [row] = await run<{ version: number }>(SERVER_VERSION_NUM_SQL, []);
 * if ((row?.version ?? 0) >= 150000) { ... }
 */
export const SERVER_VERSION_NUM_SQL =
  "SELECT pg_catalog.current_setting('server_version_num')::int AS version";

/**
 * A connection's server version, read once per connection: a server cannot change version
 * under an open connection (an upgrade restarts it, which ends the connection), and some
 * checks run at every Relation message of the stream.
 */
const versionsByConnection = new WeakMap<pg.ClientBase, number>();

/**
 * `server_version_num` of the server `client` is connected to, read at its first call
 * and remembered for the connection's life.
 *
 * @example
 * if ((await serverVersionNum(source)) < 150000) return []; // no row filters before 15
 */
export async function serverVersionNum(client: pg.ClientBase): Promise<number> {
  const known = versionsByConnection.get(client);
  if (known !== undefined) return known;
  const { rows } = await client.query<{ version: number }>(SERVER_VERSION_NUM_SQL);
  const version = rows[0]?.version ?? 0;
  versionsByConnection.set(client, version);
  return version;
}
