/**
 * What a `pgaudit.log` value logs, read as pgAudit reads it (`check_pgaudit_log` in
 * pgaudit.c): a comma-separated list of classes, case-insensitive, each adding its class,
 * a leading `-` taking it away, `all` every class, `none` nothing, and `misc` MISC_SET
 * (the class of SET statements) with MISC. The config checks
 * with it that a value keeps the records the access audit's tamper rules read.
 */

/** The statement classes pgAudit logs. */
export type PgauditLogClass = 'read' | 'write' | 'function' | 'role' | 'ddl' | 'misc' | 'misc_set';

const CLASSES: readonly PgauditLogClass[] = [
  'read',
  'write',
  'function',
  'role',
  'ddl',
  'misc',
  'misc_set',
];

/**
 * The classes a `pgaudit.log` value logs. Throws on a token pgAudit would refuse.
 *
 * @example
 * pgauditLogClasses('all, -misc'); // Set { 'read', 'write', 'function', 'role', 'ddl' }
 */
export function pgauditLogClasses(value: string): ReadonlySet<PgauditLogClass> {
  const classes = new Set<PgauditLogClass>();
  for (const raw of value.split(',')) {
    let token = raw.trim();
    const subtract = token.startsWith('-');
    if (subtract) token = token.slice(1).trim();
    // SplitIdentifierString unquotes "role"; pgAudit then compares case-insensitively.
    const name = token.replace(/^"(.*)"$/, '$1').toLowerCase();
    const named =
      name === 'all'
        ? CLASSES
        : name === 'none'
          ? []
          : // MISC covers MISC_SET too (pgAudit ORs both bits in, or takes both away).
            CLASSES.filter(
              (candidate) => candidate === name || (name === 'misc' && candidate === 'misc_set'),
            );
    if (named.length === 0 && name !== 'none')
      throw new Error(
        `"${token}" is not a pgaudit.log class (${[...CLASSES, 'all', 'none'].join(', ')})`,
      );
    for (const each of named) {
      if (subtract) classes.delete(each);
      else classes.add(each);
    }
  }
  return classes;
}
