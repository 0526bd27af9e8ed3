import { quoteIdent } from './identifiers';

/** pg_trigger.tgenabled values other than 'A' (ALWAYS, how the kit installs its triggers). */
const STATE_PROBLEMS: Readonly<Record<string, string>> = {
  D: 'is disabled',
  O: 'fires only while session_replication_role is origin (DMS may apply as replica)',
  R: 'fires only while session_replication_role is replica',
};

/**
 * One line naming a kit trigger that is not ENABLE ALWAYS, with the statement that puts
 * it back; undefined when it is. `ALTER TABLE ... ENABLE TRIGGER` after a DISABLE leaves a
 * trigger firing only while session_replication_role is origin, and DMS may apply as
 * replica. Used by `verify` (staging capture triggers) and `verify --integrity` (the
 * audit log's and the chain's).
 *
 * @example
 * ```ts
 * triggerStateProblem('"audit"."t_staging"', 'capture_insert', 'D');
 * // '"capture_insert" on "audit"."t_staging" is disabled: ALTER TABLE "audit"."t_staging" ENABLE ALWAYS TRIGGER "capture_insert"'
 * ```
 */
export function triggerStateProblem(
  qualifiedTable: string,
  trigger: string,
  enabled: string,
): string | undefined {
  const problem = STATE_PROBLEMS[enabled];
  if (problem === undefined) return undefined;
  const name = quoteIdent(trigger);
  return `${name} on ${qualifiedTable} ${problem}: ALTER TABLE ${qualifiedTable} ENABLE ALWAYS TRIGGER ${name}`;
}
