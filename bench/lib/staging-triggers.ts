import { quoteIdent } from '../../src/postgres/identifiers';
import { withClient } from './servers';

/**
 * The audit triggers on a staging table, whatever the migrations call them (every user
 * trigger on it, reported by name), and a switch that disables or re-enables them all: the trigger cases
 * time the same writes with and without them.
 * @param staging the staging table, already quoted and schema-qualified
 */
export async function stagingTriggerSwitch(
  targetUrl: string,
  staging: string,
): Promise<{
  readonly triggers: readonly string[];
  readonly setEnabled: (enabled: boolean) => Promise<void>;
}> {
  const triggers = await withClient(targetUrl, async (client) => {
    const { rows } = await client.query<{ name: string }>(
      `SELECT tgname AS name FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY 1`,
      [staging],
    );
    return rows.map((row) => row.name);
  });
  if (triggers.length === 0) throw new Error(`no audit trigger found on ${staging}`);
  const setEnabled = (enabled: boolean) =>
    withClient(targetUrl, async (client) => {
      for (const name of triggers) {
        await client.query(
          `ALTER TABLE ${staging} ${enabled ? 'ENABLE ALWAYS' : 'DISABLE'} TRIGGER ${quoteIdent(name)}`,
        );
      }
    });
  return { triggers, setEnabled };
}
