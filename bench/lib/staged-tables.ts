import { ITEMS_DDL } from './engine-capture';

/**
 * A source table whose changes the DMS- and engine-shaped scripts write into its
 * staging table: its DDL, and the values (SQL expressions) of its user columns in the
 * INSERT of a new row and in the UPDATE that follows. The scripts add the change
 * headers; one table definition serves both shapes.
 */
export interface StagedTable {
  readonly name: string;
  readonly ddl: string;
  /** Every user column of a new row whose key is the SQL expression `key`. */
  insertValues(key: string): Record<string, string>;
  /** The user columns an UPDATE of a row sets. */
  readonly updateValues: Record<string, string>;
}

/** The bench's `items` table: a key, text, numeric, int and a timestamp (no json, no array). */
export const ITEMS_TABLE: StagedTable = {
  name: 'items',
  ddl: ITEMS_DDL,
  insertValues: (key) => ({
    id: key,
    name: `'item ' || ${key}`,
    price: '9.99',
    qty: '1',
    updated_at: 'now()',
  }),
  updateValues: { price: '10.00', qty: '2', updated_at: 'now()' },
};

/**
 * A `documents` table with a jsonb, a json and a text[] column beside `items`'s kinds:
 * the capture functions read such a row's other renderings too (row_to_json for the json
 * column's exact text, the row's text for JSON null literals and array bounds). The json
 * value holds a JSON array, so each row's text passes the array test's first look.
 */
export const DOCUMENTS_TABLE: StagedTable = {
  name: 'documents',
  ddl: `CREATE TABLE documents (id bigint PRIMARY KEY, name text NOT NULL, attrs jsonb NOT NULL,
  payload json NOT NULL, tags text[] NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
  insertValues: (key) => ({
    id: key,
    name: `'document ' || ${key}`,
    attrs: `jsonb_build_object('colour', 'red', 'size', ${key} % 10, 'draft', true)`,
    payload: `json_build_object('version', 1, 'lines', json_build_array(${key}, 'first line'))`,
    tags: `ARRAY['new', 'batch ' || (${key} % 7)]`,
    updated_at: 'now()',
  }),
  updateValues: {
    attrs: `'{"colour": "blue", "size": 2, "draft": false}'::jsonb`,
    payload: `'{"version": 2, "lines": [2, "second line"]}'::json`,
    tags: `ARRAY['sold']`,
    updated_at: 'now()',
  },
};
