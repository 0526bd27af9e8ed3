import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { createHistory, type History, type Version } from '../../src';

// Checked by `npm run typecheck` (tsc over test/): the README's typed example, with an
// interface as well as a type alias. Nothing here touches a database.

interface ItemsAsInterface {
  'public.items': { id: number; name: string; price: string };
}
type ItemsAsType = {
  'public.items': { id: number; name: string; price: string };
};

/** A kysely instance that is never connected: these checks are compile-time only. */
const db = new Kysely<unknown>({
  dialect: new PostgresDialect({ pool: new pg.Pool({ max: 1 }) }),
});

describe('History<Tables> types', () => {
  afterAll(() => db.destroy());

  it('accepts an interface and a type alias, and types rows by table', () => {
    type Row = ItemsAsInterface['public.items'];
    expectTypeOf<ReturnType<History<ItemsAsInterface>['history']>>().toEqualTypeOf<
      Promise<Version<Row>[]>
    >();
    expectTypeOf<Parameters<History<ItemsAsType>['asOf']>[0]>().toEqualTypeOf<'public.items'>();
    expectTypeOf(createHistory<ItemsAsInterface>(db, { auditSchema: 'audit' })).toEqualTypeOf<
      History<ItemsAsInterface>
    >();
    expectTypeOf(createHistory<ItemsAsType>(db, { auditSchema: 'audit' })).toEqualTypeOf<
      History<ItemsAsType>
    >();
    // A table that is not in the map is a type error.
    expectTypeOf<Parameters<History<ItemsAsInterface>['latest']>[0]>().not.toEqualTypeOf<string>();
  });
});
