import type pg from 'pg';
import type { AuditTrailConfig } from '../config';
import { quoteQualified } from '../postgres/identifiers';
import { CATALOG_ONLY_SEARCH_PATH } from '../postgres/pinned-settings';
import { CONTEXT_GUARD } from '../source-context/install';
import { ddlArtifactsSchema, DMS_DDL_EVENT_TRIGGER } from '../trust/logins';

/**
 * A kit object that depends on a function, operator, type, collation or other object
 * outside pg_catalog, information_schema and the kit itself. Such code runs inside the
 * kit's statements with their rights: an index expression of the audit log in every audit
 * insert. Before 8ca9fd0, migrate resolved names through the administrator's search_path,
 * so a lookalike of a catalog function planted in `public` (any role may create there on
 * PostgreSQL 13 and 14) before the install was built into the audit log's per-key index.
 */
export interface ForeignDependency {
  /** The kit object as PostgreSQL identifies it: `index audit.audit_log_key_apply_order_idx`. */
  readonly object: string;
  /** What it depends on outside the catalog and the kit: `function public.jsonb_hash_extended(jsonb,integer)`. */
  readonly dependsOn: readonly string[];
  /**
   * The statements that rebuild the object on pg_catalog's lookalike (run by the role
   * that runs `audit-trail migrate`), or what to do when no statement can.
   */
  readonly remedy: string;
}

/** Whose objects to check, and how the connection is used. */
export interface DependencyScope {
  /**
   * True when the client is inside a transaction (verify's snapshot): the check then
   * works under a savepoint it rolls back. Otherwise it opens and rolls back its own.
   */
  readonly inTransaction: boolean;
}

/**
 * The target's kit objects (everything in the audit schema: tables, indexes, constraints,
 * defaults, triggers, views, functions, types) that depend on anything outside
 * pg_catalog, information_schema and the audit schema. Staging columns carry pg_catalog
 * types only (source types the target renders otherwise become `text`:
 * src/migrate/target-types.ts), so no user type is a legitimate dependency.
 */
export async function targetForeignDependencies(
  client: pg.ClientBase,
  auditSchema: string,
  scope: DependencyScope,
): Promise<ForeignDependency[]> {
  return findForeignDependencies(client, scope, {
    kitObjects: objectsInSchemas('ARRAY[$1::pg_catalog.text]'),
    kitSchemas: 'ARRAY[$1::pg_catalog.text]',
    values: [auditSchema],
  });
}

/**
 * The source's kit objects: the context table (`sourceContext`) with its indexes,
 * constraints, defaults, triggers and guard function, and DMS's DDL-capture schema and
 * event trigger (with a `deployment`). The local engine's publication needs no check:
 * PostgreSQL refuses user-defined functions, operators, types and collations in a
 * publication's row filter.
 */
export async function sourceForeignDependencies(
  client: pg.ClientBase,
  config: AuditTrailConfig,
  scope: DependencyScope,
): Promise<ForeignDependency[]> {
  const context = config.sourceContext;
  if (!hasSourceKitObjects(config)) return [];
  const table = context && quoteQualified(context.schema, context.table);
  const guard = context && `${quoteQualified(context.schema, CONTEXT_GUARD)}()`;
  const ddlSchema = config.deployment === undefined ? null : ddlArtifactsSchema(config);
  const ddlSchemas = `ARRAY(SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_namespace AS n WHERE n.nspname OPERATOR(pg_catalog.=) $3)`;
  return findForeignDependencies(client, scope, {
    kitObjects: `${objectsOfTable('pg_catalog.to_regclass($1)')}
      UNION ALL SELECT ${classOid('pg_proc')}, p.oid FROM pg_catalog.pg_proc AS p
                 WHERE p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure($2)
      UNION ALL SELECT ${classOid('pg_event_trigger')}, e.oid FROM pg_catalog.pg_event_trigger AS e
                 WHERE $3::pg_catalog.text IS NOT NULL AND e.evtname OPERATOR(pg_catalog.=) $4
      UNION ALL ${objectsInSchemas(ddlSchemas)}`,
    kitSchemas: ddlSchemas,
    values: [table ?? null, guard ?? null, ddlSchema, DMS_DDL_EVENT_TRIGGER],
  });
}

/**
 * Whether the config gives the kit objects of its own on the source: a context table, or
 * DMS's DDL-capture objects (with a `deployment`).
 */
export function hasSourceKitObjects(config: AuditTrailConfig): boolean {
  return config.sourceContext !== undefined || config.deployment !== undefined;
}

/** One line for a finding: what depends on what, and why it matters. */
export function describeForeignDependency(finding: ForeignDependency): string {
  return (
    `${finding.object} depends on ${finding.dependsOn.join(', ')}, outside pg_catalog and the kit: ` +
    'its code runs inside the kit’s statements with their rights'
  );
}

interface Query {
  /** SQL for the kit's objects, as rows of (class oid, object oid). */
  readonly kitObjects: string;
  /** SQL for the names of the schemas all of whose objects are the kit's (a text[]). */
  readonly kitSchemas: string;
  readonly values: readonly unknown[];
}

/** Catalogs whose rows name their schema, and the column that does. */
const NAMESPACED: readonly (readonly [string, string])[] = [
  ['pg_class', 'relnamespace'],
  ['pg_proc', 'pronamespace'],
  ['pg_type', 'typnamespace'],
  ['pg_operator', 'oprnamespace'],
  ['pg_collation', 'collnamespace'],
  ['pg_conversion', 'connamespace'],
  ['pg_constraint', 'connamespace'],
  ['pg_opclass', 'opcnamespace'],
  ['pg_opfamily', 'opfnamespace'],
  ['pg_statistic_ext', 'stxnamespace'],
  ['pg_ts_config', 'cfgnamespace'],
  ['pg_ts_dict', 'dictnamespace'],
  ['pg_ts_parser', 'prsnamespace'],
  ['pg_ts_template', 'tmplnamespace'],
];

/** Catalogs whose rows belong to a table (and live in its schema), and the column naming it. */
const OF_TABLE: readonly (readonly [string, string])[] = [
  ['pg_trigger', 'tgrelid'],
  ['pg_attrdef', 'adrelid'],
  ['pg_rewrite', 'ev_class'],
  ['pg_policy', 'polrelid'],
];

/** SQL for every object in the schemas named by `names` (a text[]), sub-objects of their tables included. */
function objectsInSchemas(names: string): string {
  const schemas = `ARRAY(SELECT n.oid FROM pg_catalog.pg_namespace AS n WHERE n.nspname OPERATOR(pg_catalog.=) ANY (${names}))`;
  return [
    ...NAMESPACED.map(
      ([catalog, column]) =>
        `SELECT ${classOid(catalog)} AS classid, x.oid AS objid FROM pg_catalog.${catalog} AS x WHERE x.${column} OPERATOR(pg_catalog.=) ANY (${schemas})`,
    ),
    ...OF_TABLE.map(
      ([catalog, column]) =>
        `SELECT ${classOid(catalog)}, x.oid FROM pg_catalog.${catalog} AS x JOIN pg_catalog.pg_class AS r ON r.oid OPERATOR(pg_catalog.=) x.${column} WHERE r.relnamespace OPERATOR(pg_catalog.=) ANY (${schemas})`,
    ),
  ].join('\n      UNION ALL ');
}

/** SQL for one table (`relation`, a regclass expression) and its indexes, row types, constraints and sub-objects. */
function objectsOfTable(relation: string): string {
  return [
    `SELECT ${classOid('pg_class')} AS classid, ${relation}::pg_catalog.oid AS objid WHERE ${relation} IS NOT NULL`,
    `SELECT ${classOid('pg_class')}, i.indexrelid FROM pg_catalog.pg_index AS i WHERE i.indrelid OPERATOR(pg_catalog.=) ${relation}`,
    `SELECT ${classOid('pg_type')}, t.oid FROM pg_catalog.pg_type AS t WHERE t.typrelid OPERATOR(pg_catalog.=) ${relation}`,
    `SELECT ${classOid('pg_constraint')}, k.oid FROM pg_catalog.pg_constraint AS k WHERE k.conrelid OPERATOR(pg_catalog.=) ${relation}`,
    ...OF_TABLE.map(
      ([catalog, column]) =>
        `SELECT ${classOid(catalog)}, x.oid FROM pg_catalog.${catalog} AS x WHERE x.${column} OPERATOR(pg_catalog.=) ${relation}`,
    ),
  ].join('\n      UNION ALL ');
}

/** A catalog's oid as an oid constant (`'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid`). */
function classOid(catalog: string): string {
  return `'pg_catalog.${catalog}'::pg_catalog.regclass::pg_catalog.oid`;
}

/**
 * SQL for the schema an object (class `c`, oid `o`) lives in: its own namespace column,
 * or its table's for a trigger, default, rule or policy; a schema is its own; NULL for
 * objects outside schemas (languages, extensions, casts).
 */
function namespaceOf(c: string, o: string): string {
  const own = ([catalog, column]: readonly [string, string]) =>
    `WHEN ${c} OPERATOR(pg_catalog.=) ${classOid(catalog)} THEN (SELECT x.${column} FROM pg_catalog.${catalog} AS x WHERE x.oid OPERATOR(pg_catalog.=) ${o})`;
  const viaTable = ([catalog, column]: readonly [string, string]) =>
    `WHEN ${c} OPERATOR(pg_catalog.=) ${classOid(catalog)} THEN (SELECT r.relnamespace FROM pg_catalog.${catalog} AS x JOIN pg_catalog.pg_class AS r ON r.oid OPERATOR(pg_catalog.=) x.${column} WHERE x.oid OPERATOR(pg_catalog.=) ${o})`;
  return `(CASE
    WHEN ${c} OPERATOR(pg_catalog.=) ${classOid('pg_namespace')} THEN ${o}
    ${[...NAMESPACED.map(own), ...OF_TABLE.map(viaTable)].join('\n    ')}
  END)`;
}

/** One dependency of a kit object on an object outside pg_catalog and the kit. */
interface DependencyRow {
  readonly classid: number;
  readonly objid: number;
  readonly object: string;
  readonly depends_on: string;
  /** For a function or operator with a lookalike in pg_catalog: its deparsed spelling, and pg_catalog's. */
  readonly spelled: string | null;
  readonly catalog_spelling: string | null;
}

/** How a kit object is rebuilt: its definition and the statements around it. */
interface RebuildRow {
  readonly kind: 'index' | 'check' | 'default' | 'view' | 'trigger' | null;
  readonly definition: string | null;
  readonly relation: string | null;
  readonly name: string | null;
}

/**
 * Every pg_depend row from a kit object to something neither the kit's, nor in
 * pg_catalog or information_schema, nor allowed by kind: schemas (containers, no code),
 * and the plpgsql language. Read on a catalog-only search_path, so definitions
 * deparse with every other name schema-qualified.
 */
async function findForeignDependencies(
  client: pg.ClientBase,
  scope: DependencyScope,
  query: Query,
): Promise<ForeignDependency[]> {
  return withCatalogOnlyPath(client, scope, async () => {
    const { rows } = await client.query<DependencyRow>(
      `WITH allowed AS (
         SELECT n.oid FROM pg_catalog.pg_namespace AS n
          WHERE n.nspname OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog', 'information_schema'])
             OR n.nspname OPERATOR(pg_catalog.=) ANY (${query.kitSchemas})),
       kit AS MATERIALIZED (${query.kitObjects}),
       kit_deps AS MATERIALIZED (
         SELECT d.* FROM kit AS k
           JOIN pg_catalog.pg_depend AS d
             ON d.classid OPERATOR(pg_catalog.=) k.classid AND d.objid OPERATOR(pg_catalog.=) k.objid
          WHERE d.deptype OPERATOR(pg_catalog.<>) 'p'),
       foreign_refs AS MATERIALIZED (
         SELECT d.* FROM kit_deps AS d
          WHERE NOT coalesce(${namespaceOf('d.refclassid', 'd.refobjid')}, 0) OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT oid FROM allowed))
            AND NOT d.refclassid OPERATOR(pg_catalog.=) ${classOid('pg_namespace')}
            AND NOT (d.refclassid OPERATOR(pg_catalog.=) ${classOid('pg_language')}
                     AND d.refobjid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT l.oid FROM pg_catalog.pg_language AS l WHERE l.lanname OPERATOR(pg_catalog.=) 'plpgsql')))
            AND NOT EXISTS (SELECT FROM kit AS k WHERE k.classid OPERATOR(pg_catalog.=) d.refclassid AND k.objid OPERATOR(pg_catalog.=) d.refobjid))
       SELECT d.classid::pg_catalog.int8 AS classid, d.objid::pg_catalog.int8 AS objid,
              pg_catalog.concat_ws(' ', o.type, o.identity) AS object,
              pg_catalog.concat_ws(' ', r.type, r.identity) AS depends_on,
              ${spellings('d')}
         FROM foreign_refs AS d,
              LATERAL pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid) AS o,
              LATERAL pg_catalog.pg_identify_object(d.refclassid, d.refobjid, d.refobjsubid) AS r
        ORDER BY 3, 4`,
      [...query.values],
    );
    const byObject = new Map<string, DependencyRow[]>();
    for (const row of rows) byObject.set(row.object, [...(byObject.get(row.object) ?? []), row]);
    const findings: ForeignDependency[] = [];
    for (const [object, dependencies] of byObject)
      findings.push({
        object,
        dependsOn: [...new Set(dependencies.map((row) => row.depends_on))],
        remedy: await rebuildRemedy(client, dependencies),
      });
    return findings;
  });
}

/**
 * SQL for how the deparser spells a referenced function or operator outside the
 * search_path (`public.jsonb_hash_extended(`, `OPERATOR(public.=)`), and pg_catalog's
 * spelling of the same name when pg_catalog has one (else NULL: nothing to rebuild on).
 */
function spellings(d: string): string {
  const isClass = (catalog: string) =>
    `${d}.refclassid OPERATOR(pg_catalog.=) ${classOid(catalog)}`;
  return `CASE WHEN ${isClass('pg_proc')} THEN (
             SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(p.proname) OPERATOR(pg_catalog.||) '('
               FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
              WHERE p.oid OPERATOR(pg_catalog.=) ${d}.refobjid)
            WHEN ${isClass('pg_operator')} THEN (
             SELECT 'OPERATOR(' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) o.oprname OPERATOR(pg_catalog.||) ')'
               FROM pg_catalog.pg_operator AS o JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace
              WHERE o.oid OPERATOR(pg_catalog.=) ${d}.refobjid)
       END AS spelled,
       CASE WHEN ${isClass('pg_proc')} THEN (
             SELECT 'pg_catalog.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(p.proname) OPERATOR(pg_catalog.||) '('
               FROM pg_catalog.pg_proc AS p
              WHERE p.oid OPERATOR(pg_catalog.=) ${d}.refobjid
                AND EXISTS (SELECT FROM pg_catalog.pg_proc AS c
                             WHERE c.proname OPERATOR(pg_catalog.=) p.proname
                               AND c.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace::pg_catalog.oid))
            WHEN ${isClass('pg_operator')} THEN (
             SELECT 'OPERATOR(pg_catalog.' OPERATOR(pg_catalog.||) o.oprname OPERATOR(pg_catalog.||) ')'
               FROM pg_catalog.pg_operator AS o
              WHERE o.oid OPERATOR(pg_catalog.=) ${d}.refobjid
                AND EXISTS (SELECT FROM pg_catalog.pg_operator AS c
                             WHERE c.oprname OPERATOR(pg_catalog.=) o.oprname
                               AND c.oprnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace::pg_catalog.oid))
       END AS catalog_spelling`;
}

/**
 * The statements that rebuild one kit object with each foreign function or operator
 * replaced by pg_catalog's of the same name: an index dropped and created again, a CHECK
 * constraint or a view replaced, a column default set again. A trigger calling a function
 * outside the kit is not the kit's: dropped (`migrate` puts back the kit's own). Anything
 * else (a type, a collation, a name pg_catalog does not have) cannot be rebuilt by
 * spelling: the object is named for a person to rebuild as a fresh install has it.
 */
async function rebuildRemedy(
  client: pg.ClientBase,
  dependencies: readonly DependencyRow[],
): Promise<string> {
  const [{ classid, objid }] = dependencies as [DependencyRow];
  const { rows } = await client.query<RebuildRow>(
    `SELECT CASE
              WHEN $1::pg_catalog.oid OPERATOR(pg_catalog.=) ${classOid('pg_class')} AND (c.relkind OPERATOR(pg_catalog.=) 'i' OR c.relkind OPERATOR(pg_catalog.=) 'I') THEN 'index'
              WHEN $1::pg_catalog.oid OPERATOR(pg_catalog.=) ${classOid('pg_constraint')} AND k.contype OPERATOR(pg_catalog.=) 'c' AND k.conrelid OPERATOR(pg_catalog.<>) 0 THEN 'check'
              WHEN $1::pg_catalog.oid OPERATOR(pg_catalog.=) ${classOid('pg_attrdef')} AND a.attgenerated OPERATOR(pg_catalog.=) '' THEN 'default'
              WHEN $1::pg_catalog.oid OPERATOR(pg_catalog.=) ${classOid('pg_rewrite')} AND v.relkind OPERATOR(pg_catalog.=) 'v' THEN 'view'
              WHEN $1::pg_catalog.oid OPERATOR(pg_catalog.=) ${classOid('pg_trigger')} AND NOT g.tgisinternal THEN 'trigger'
            END AS kind,
            coalesce(pg_catalog.pg_get_indexdef(c.oid), pg_catalog.pg_get_constraintdef(k.oid),
                     pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), pg_catalog.pg_get_viewdef(v.oid)) AS definition,
            coalesce(pg_catalog.quote_ident(kn.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(kr.relname),
                     pg_catalog.quote_ident(an.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(ar.relname),
                     pg_catalog.quote_ident(vn.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(v.relname),
                     pg_catalog.quote_ident(gn.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(gr.relname),
                     pg_catalog.quote_ident(cn.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)) AS relation,
            pg_catalog.quote_ident(coalesce(k.conname, a.attname, g.tgname)) AS name
       FROM (SELECT) AS one
       LEFT JOIN pg_catalog.pg_class AS c ON $1::pg_catalog.oid OPERATOR(pg_catalog.=) ${classOid('pg_class')} AND c.oid OPERATOR(pg_catalog.=) $2::pg_catalog.oid
       LEFT JOIN pg_catalog.pg_namespace AS cn ON cn.oid OPERATOR(pg_catalog.=) c.relnamespace
       LEFT JOIN pg_catalog.pg_constraint AS k ON $1::pg_catalog.oid OPERATOR(pg_catalog.=) ${classOid('pg_constraint')} AND k.oid OPERATOR(pg_catalog.=) $2::pg_catalog.oid
       LEFT JOIN pg_catalog.pg_class AS kr ON kr.oid OPERATOR(pg_catalog.=) k.conrelid
       LEFT JOIN pg_catalog.pg_namespace AS kn ON kn.oid OPERATOR(pg_catalog.=) kr.relnamespace
       LEFT JOIN pg_catalog.pg_attrdef AS ad ON $1::pg_catalog.oid OPERATOR(pg_catalog.=) ${classOid('pg_attrdef')} AND ad.oid OPERATOR(pg_catalog.=) $2::pg_catalog.oid
       LEFT JOIN pg_catalog.pg_attribute AS a ON a.attrelid OPERATOR(pg_catalog.=) ad.adrelid AND a.attnum OPERATOR(pg_catalog.=) ad.adnum
       LEFT JOIN pg_catalog.pg_class AS ar ON ar.oid OPERATOR(pg_catalog.=) ad.adrelid
       LEFT JOIN pg_catalog.pg_namespace AS an ON an.oid OPERATOR(pg_catalog.=) ar.relnamespace
       LEFT JOIN pg_catalog.pg_rewrite AS w ON $1::pg_catalog.oid OPERATOR(pg_catalog.=) ${classOid('pg_rewrite')} AND w.oid OPERATOR(pg_catalog.=) $2::pg_catalog.oid
       LEFT JOIN pg_catalog.pg_class AS v ON v.oid OPERATOR(pg_catalog.=) w.ev_class
       LEFT JOIN pg_catalog.pg_namespace AS vn ON vn.oid OPERATOR(pg_catalog.=) v.relnamespace
       LEFT JOIN pg_catalog.pg_trigger AS g ON $1::pg_catalog.oid OPERATOR(pg_catalog.=) ${classOid('pg_trigger')} AND g.oid OPERATOR(pg_catalog.=) $2::pg_catalog.oid
       LEFT JOIN pg_catalog.pg_class AS gr ON gr.oid OPERATOR(pg_catalog.=) g.tgrelid
       LEFT JOIN pg_catalog.pg_namespace AS gn ON gn.oid OPERATOR(pg_catalog.=) gr.relnamespace`,
    [classid, objid],
  );
  const rebuild = rows[0];
  const object = dependencies[0]!.object;
  const byHand =
    `rebuild ${object} without it, as a fresh install has it (audit-trail migrate into an empty ` +
    'database, then compare pg_dump --schema-only of both)';
  if (rebuild?.kind === 'trigger')
    return (
      'a kit trigger calls the kit’s own functions, so this one is not the kit’s (audit-trail ' +
      `migrate puts back any of the kit’s afterwards): DROP TRIGGER ${rebuild.name} ON ${rebuild.relation};`
    );
  if (!rebuild?.kind || rebuild.definition === null || rebuild.relation === null) return byHand;
  let definition = rebuild.definition;
  for (const dependency of dependencies) {
    if (dependency.spelled === null || dependency.catalog_spelling === null) return byHand;
    if (!definition.includes(dependency.spelled)) return byHand;
    definition = definition.split(dependency.spelled).join(dependency.catalog_spelling);
  }
  const statements = {
    index: () => [`DROP INDEX ${rebuild.relation}`, definition],
    check: () => [
      `ALTER TABLE ${rebuild.relation} DROP CONSTRAINT ${rebuild.name}, ADD CONSTRAINT ${rebuild.name} ${definition}`,
    ],
    default: () => [
      `ALTER TABLE ${rebuild.relation} ALTER COLUMN ${rebuild.name} SET DEFAULT ${definition}`,
    ],
    view: () => [
      `CREATE OR REPLACE VIEW ${rebuild.relation} AS ${definition.replace(/;\s*$/, '')}`,
    ],
  }[rebuild.kind]();
  return (
    'rebuild it on pg_catalog’s, as the role that runs audit-trail migrate: ' +
    `BEGIN; SET LOCAL search_path = ${CATALOG_ONLY_SEARCH_PATH}; ${statements.join('; ')}; COMMIT;`
  );
}

/**
 * Runs `work` with search_path = pg_catalog, pg_temp and JIT off for this transaction only (under a
 * savepoint when the client is in one), then rolls back: the check reads, and leaves the
 * session's settings as they were.
 */
async function withCatalogOnlyPath<T>(
  client: pg.ClientBase,
  scope: DependencyScope,
  work: () => Promise<T>,
): Promise<T> {
  await client.query(scope.inTransaction ? 'SAVEPOINT kit_dependencies' : 'BEGIN READ ONLY');
  try {
    // JIT (on where PostgreSQL has LLVM) compiled this one catalog read for ~0.7 s.
    await client.query(
      "SELECT pg_catalog.set_config('search_path', $1, true), pg_catalog.set_config('jit', 'off', true)",
      [CATALOG_ONLY_SEARCH_PATH],
    );
    return await work();
  } finally {
    await client.query(
      scope.inTransaction
        ? 'ROLLBACK TO SAVEPOINT kit_dependencies; RELEASE SAVEPOINT kit_dependencies'
        : 'ROLLBACK',
    );
  }
}
