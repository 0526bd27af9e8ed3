/**
 * Session settings that change how PostgreSQL prints values as text. A database or role
 * can set any of them (`ALTER DATABASE src SET DateStyle = 'SQL, DMY'`), and pgoutput,
 * `COPY`/`SELECT` and the target's input functions all follow the session: unpinned,
 * 2024-02-01 could travel as 01/02/2024 and be read back as 2 January, floats could lose
 * digits. Every connection the kit opens sends these in its startup packet, which
 * outranks database and role settings (the walsender included), and every function that
 * renders row or key values on the target sets them in its `SET` clauses (DMS's sessions
 * take the target database's settings): `{{pinned_output_settings}}` in `triggers/`.
 */
export const PINNED_OUTPUT_SETTINGS: Readonly<Record<string, string>> = {
  DateStyle: 'ISO,MDY',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  TimeZone: 'UTC',
  // money prints (and parses) with the locale's currency symbol and separators.
  lc_monetary: 'C',
  // Not an output setting, but pinned the same way: JIT (on by default where LLVM is
  // present) compiles every multi-row staging statement again, ~1.6 s instead of ~10 ms,
  // and the apply lag grows without bound. The kit's statements are short and
  // generic-planned; they never gain from it.
  jit: 'off',
};

/**
 * `search_path` for a kit session whose SQL names every kit and user object with its
 * schema: pg_catalog only, pg_temp last (no temporary table shadows a catalog). The
 * default path holds public, where every role may create objects on PostgreSQL 13 and 14:
 * a function whose argument types match a call more exactly than pg_catalog's would run
 * in the session, with its rights.
 */
export const CATALOG_ONLY_SEARCH_PATH = 'pg_catalog, pg_temp';
