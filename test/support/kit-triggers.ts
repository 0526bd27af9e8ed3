import { quoteIdent, quoteLiteral } from '../../src/postgres/identifiers';

/**
 * SQL that enables every trigger on the kit table `table` (in schema `audit`, or
 * `auditSchema`) as the kit installs them: ENABLE ALWAYS. A tamper that switched them
 * off puts them back this way; `ENABLE TRIGGER USER` would leave them firing only while
 * session_replication_role is origin, which verify --integrity reports.
 */
export function enableKitTriggers(table: string, auditSchema = 'audit'): string {
  const target = `${quoteIdent(auditSchema)}.${quoteIdent(table)}`;
  return `DO $enable$ DECLARE t pg_catalog.name; BEGIN
    FOR t IN SELECT tgname FROM pg_catalog.pg_trigger WHERE tgrelid = ${quoteLiteral(target)}::regclass AND NOT tgisinternal LOOP
      EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', ${quoteLiteral(target)}, t);
    END LOOP; END $enable$`;
}
