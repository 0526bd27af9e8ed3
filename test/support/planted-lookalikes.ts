import { withClient } from './databases';

/**
 * Lookalikes of catalog functions, operators and aggregates, as an insider who may
 * CREATE in `public` (every role on PostgreSQL 13 and 14; on any version where a DBA
 * allows it) plants them: argument types that match one of the kit's calls more exactly
 * than pg_catalog's, so a session that resolves names through its search_path runs the
 * insider's code with the session's rights.
 *
 * Each lookalike records its call in `public.planted_calls` (what ran, as whom, under
 * which application_name), then answers as pg_catalog's would (or as the entry says), so
 * the statement it ran in goes on and the test can read afterwards what ran:
 * {@link plantedCalls}.
 */
export type Lookalike =
  /** `public.name(args)`: records the call, then runs `answer` (SQL, `$1`… the arguments). */
  | {
      readonly function: string;
      readonly args: string;
      readonly returns: string;
      readonly answer: string;
    }
  /** `public.op` for `(left, right)`: records the call, then compares as oids. */
  | { readonly operator: '=' | '<>'; readonly left: string; readonly right: string }
  /** `public.name(arg)`: an aggregate whose step records each call, then runs `step`. */
  | {
      readonly aggregate: string;
      readonly arg: string;
      readonly state: string;
      readonly step: string;
      readonly initcond?: string;
    };

/**
 * SQL that creates `public.planted_calls` (any role may INSERT into it) and plants each
 * lookalike. Run it once per database, as a role that may create in `public`.
 * @example
 * await withClient(url, (client) =>
 *   client.query(plantLookalikes([{ operator: '=', left: 'oid', right: 'regclass' }])),
 * );
 */
export function plantLookalikes(lookalikes: readonly Lookalike[]): string {
  return [
    'CREATE TABLE public.planted_calls (fn text, by_user text, by_app text);',
    'GRANT INSERT ON public.planted_calls TO PUBLIC;',
    ...lookalikes.map(plant),
  ].join('\n');
}

/** What ran of the lookalikes planted in `url`'s database: one row per lookalike and caller. */
export async function plantedCalls(
  url: string,
): Promise<{ fn: string; by_user: string; by_app: string; calls: number }[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{
      fn: string;
      by_user: string;
      by_app: string;
      calls: number;
    }>(
      `SELECT fn, by_user, by_app, count(*)::int AS calls
         FROM public.planted_calls GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    );
    return rows;
  });
}

const OPERATOR_FUNCTIONS = { '=': 'planted_eq', '<>': 'planted_ne' } as const;

function plant(lookalike: Lookalike): string {
  if ('function' in lookalike) {
    const { function: name, args, returns, answer } = lookalike;
    return `CREATE FUNCTION public.${name}(${args}) RETURNS ${returns}
      LANGUAGE sql AS $$ ${record(`${name}(${args})`)} ${answer}$$;`;
  }
  if ('operator' in lookalike) {
    const { operator, left, right } = lookalike;
    const fn = `public.${OPERATOR_FUNCTIONS[operator]}`;
    return `CREATE FUNCTION ${fn}(${left}, ${right}) RETURNS boolean
      LANGUAGE sql AS $$ ${record(`${left} ${operator} ${right}`)}
        SELECT $1::oid OPERATOR(pg_catalog.${operator}) $2::oid$$;
    CREATE OPERATOR public.${operator} (leftarg = ${left}, rightarg = ${right}, function = ${fn});`;
  }
  const { aggregate: name, arg, state, step, initcond } = lookalike;
  const fn = `public.planted_${name}_step`;
  return `CREATE FUNCTION ${fn}(${state}, ${arg}) RETURNS ${state}
      LANGUAGE sql AS $$ ${record(`${name}(${arg})`)} SELECT ${step}$$;
    CREATE AGGREGATE public.${name}(${arg}) (sfunc = ${fn}, stype = ${state}${
      initcond === undefined ? '' : `, initcond = '${initcond}'`
    });`;
}

/** The statement a lookalike runs first: what it is, and who called it. */
function record(what: string): string {
  return `INSERT INTO public.planted_calls
        VALUES ('${what.replaceAll("'", "''")}', current_user, current_setting('application_name'));`;
}
