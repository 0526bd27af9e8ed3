import { quoteIdent, quoteLiteral } from '../../src/postgres/identifiers';
import {
  CHANGE_SEQ_COLUMN,
  COMMIT_TIMESTAMP_COLUMN,
  STREAM_POSITION_COLUMN,
  TRANSACTION_ID_COLUMN,
} from '../../src/staging/header-columns';
import { withClient } from './servers';

/**
 * The cheapest synchronous capture there could be, to measure what any design that writes
 * one audit row per change while the change is applied must cost (#14, `dms_apply_ratio`):
 * one INSERT per change into `floor_log`, a copy of the audit log with all its indexes and
 * checks (`LIKE ... INCLUDING ALL`) but none of its triggers, the row as `to_jsonb`, the
 * replay dedup as `ON CONFLICT DO NOTHING`; no caller check, no changed columns, no exact
 * column texts, no chain, no key move. It is not a capture the kit could ship (it records
 * less than the audit trail must and trusts its caller); it is the floor under one.
 *
 * - `trigger`: a plain PL/pgSQL row trigger (AFTER INSERT OR UPDATE), not SECURITY DEFINER;
 * - `bare`: the same trigger into a copy of the log without any index or check (`LIKE ...
 *   INCLUDING IDENTITY INCLUDING DEFAULTS`), so the difference to `trigger` is what the
 *   log's indexes cost;
 * - `rule`: two rewrite rules (`ON INSERT`/`ON UPDATE DO ALSO INSERT ...`), which the
 *   planner folds into the statement itself: no PL/pgSQL call, no SPI. (Rules do not fire
 *   on COPY, which DMS's full load uses, so a rule could only ever serve CDC.)
 *
 * Installed on a database whose staging triggers are already disabled; `key` is the
 * table's one key column.
 */
export type CaptureFloor = 'trigger' | 'bare' | 'rule';

export async function installCaptureFloor(
  url: string,
  auditSchema: string,
  staging: { readonly table: string; readonly sourceTable: string; readonly key: string },
  floor: CaptureFloor,
): Promise<void> {
  const schema = quoteIdent(auditSchema);
  const log = `${schema}.floor_log`;
  const stagingTable = `${schema}.${quoteIdent(staging.table)}`;
  const key = quoteIdent(staging.key);
  const columns = `(source_schema, source_table, row_key, operation, commit_timestamp,
      change_seq, transaction_id, stream_position, old_row, new_row)`;
  const values = (
    operation: string,
    oldRow: string,
  ) => `VALUES ('public', ${quoteLiteral(staging.sourceTable)},
      jsonb_build_object(${quoteLiteral(staging.key)}, NEW.${key}), ${operation},
      NEW.${COMMIT_TIMESTAMP_COLUMN.name}, NEW.${CHANGE_SEQ_COLUMN.name},
      NEW.${TRANSACTION_ID_COLUMN.name}, NEW.${STREAM_POSITION_COLUMN.name}, ${oldRow}, to_jsonb(NEW))
    ON CONFLICT DO NOTHING`;
  const copied = floor === 'bare' ? 'INCLUDING IDENTITY INCLUDING DEFAULTS' : 'INCLUDING ALL';
  const statements = [`CREATE TABLE ${log} (LIKE ${schema}.audit_log ${copied})`];
  if (floor !== 'rule') {
    statements.push(
      `CREATE FUNCTION ${schema}.floor_capture() RETURNS trigger LANGUAGE plpgsql AS $floor$
       BEGIN
         INSERT INTO ${log} ${columns}
         ${values('TG_OP', "CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END")};
         RETURN NULL;
       END $floor$`,
      `CREATE TRIGGER floor_capture AFTER INSERT OR UPDATE ON ${stagingTable}
       FOR EACH ROW EXECUTE FUNCTION ${schema}.floor_capture()`,
    );
  } else {
    statements.push(
      `CREATE RULE floor_insert AS ON INSERT TO ${stagingTable} DO ALSO
       INSERT INTO ${log} ${columns} ${values("'INSERT'", 'NULL')}`,
      `CREATE RULE floor_update AS ON UPDATE TO ${stagingTable} DO ALSO
       INSERT INTO ${log} ${columns} ${values("'UPDATE'", 'to_jsonb(OLD)')}`,
    );
  }
  await withClient(url, async (client) => {
    // A rule's actions run with the rights of the staging table's owner: the log is its.
    const { rows } = await client.query<{ owner: string }>(
      `SELECT relowner::regrole::text AS owner FROM pg_class WHERE oid = $1::regclass`,
      [stagingTable],
    );
    statements.splice(1, 0, `ALTER TABLE ${log} OWNER TO ${rows[0]!.owner}`);
    for (const statement of statements) await client.query(statement);
  });
}
