import { verifyAuditTrail } from '../../src/verify';
import { withClient } from '../support/databases';
import { installWithHistory } from '../trust/support';

/**
 * verify reads the source and the target on its logins' search_path, where any role may
 * create functions and operators on PostgreSQL 13 and 14. A lookalike that matched one of
 * its calls exactly (pg_catalog has no oid = regclass; to_jsonb takes anyelement) would run
 * with verify's rights and could change its answer.
 */
// verify reads in read-only transactions: each lookalike fails loudly when it runs.
const PLANT = `
  CREATE FUNCTION public.planted_eq(oid, regclass) RETURNS boolean
    LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'planted oid = regclass ran as %', current_user; END $$;
  CREATE OPERATOR public.= (leftarg = oid, rightarg = regclass, function = public.planted_eq);
  CREATE FUNCTION public.to_jsonb(text[]) RETURNS jsonb
    LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'planted to_jsonb(text[]) ran as %', current_user; END $$;`;

describe('verify with lookalikes planted in public', () => {
  it('calls none of them on the source or the target', async () => {
    const install = await installWithHistory();
    for (const url of [install.sourceUrl, install.targetUrl])
      await withClient(url, (client) => client.query(PLANT));
    await withClient(install.sourceUrl, (client) =>
      client.query(`INSERT INTO items VALUES (1, 'uno'), (2, 'two')`),
    );

    const report = await verifyAuditTrail(install);
    expect(report.ok).toBe(true);
  });
});
