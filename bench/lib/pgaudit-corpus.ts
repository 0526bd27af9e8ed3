/**
 * A synthetic but realistic RDS PostgreSQL log with pgAudit records, in the RDS
 * prefix format `%t:%r:%u@%d:[%p]:`: human reads and writes (multi-line statements
 * with quotes and commas, extended-protocol parameters, ROWS), privilege changes,
 * DDL, service-account traffic, client-tool noise and ordinary non-audit lines.
 */

const TEMPLATES: readonly ((n: number) => string)[] = [
  (n) =>
    `alice@appdb:[${4000 + (n % 50)}]:LOG:  AUDIT: SESSION,${n},1,READ,SELECT,TABLE,public.orders,"SELECT o.id, o.total, c.name\n\tFROM public.orders o JOIN public.customers c ON c.id = o.customer_id\n\tWHERE c.name = 'O''Brien, Ltd' AND o.total > 100;",<none>`,
  (n) =>
    `app_svc@appdb:[${5000 + (n % 20)}]:LOG:  AUDIT: SESSION,${n},1,WRITE,INSERT,TABLE,public.orders,"INSERT INTO public.orders (customer_id, total, note) VALUES ($1, $2, $3)","42,199.90,""gift, wrapped"""`,
  (n) =>
    `bob@appdb:[${4100 + (n % 50)}]:LOG:  AUDIT: SESSION,${n},1,WRITE,UPDATE,TABLE,public.items,"UPDATE public.items SET price = price * 1.1 WHERE category = 'tools'",<none>,${n % 500}`,
  (n) =>
    `alice@appdb:[${4000 + (n % 50)}]:LOG:  AUDIT: SESSION,${n},1,ROLE,GRANT,TABLE,,GRANT SELECT ON public.orders TO reporting,<none>`,
  (n) =>
    `carol@appdb:[${4200 + (n % 50)}]:LOG:  AUDIT: SESSION,${n},1,DDL,ALTER TABLE,TABLE,public.items,ALTER TABLE public.items ADD COLUMN discontinued boolean DEFAULT false,<none>`,
  (n) =>
    `alice@appdb:[${4000 + (n % 50)}]:LOG:  AUDIT: SESSION,${n},1,MISC,SET,,,SET extra_float_digits = 3,<none>`,
  (n) =>
    `dave@appdb:[${4300 + (n % 50)}]:LOG:  AUDIT: SESSION,${n},1,READ,SELECT,TABLE,pg_catalog.pg_class,"SELECT c.oid, c.relname, n.nspname FROM pg_catalog.pg_class c, pg_catalog.pg_namespace n WHERE n.oid = c.relnamespace",<none>`,
  (n) =>
    `app_svc@appdb:[${5000 + (n % 20)}]:LOG:  AUDIT: SESSION,${n},1,READ,SELECT,,,SELECT 1,<none>`,
  (n) =>
    `app_svc@appdb:[${5000 + (n % 20)}]:LOG:  AUDIT: SESSION,${n},1,READ,SELECT,TABLE,public.customers,"SELECT id, name, email FROM public.customers WHERE id = $1",${n}`,
  (n) =>
    `alice@appdb:[${4000 + (n % 50)}]:LOG:  AUDIT: SESSION,${n},1,ROLE,CREATE ROLE,,,CREATE ROLE temp_${n} LOGIN PASSWORD <REDACTED>,<none>`,
  () => `[unknown]@[unknown]:[6000]:LOG:  connection received: host=10.0.1.20 port=51234`,
  () =>
    `app_svc@appdb:[6001]:LOG:  connection authorized: user=app_svc database=appdb SSL enabled (protocol=TLSv1.3)`,
];

/** A log text of about `lines` physical lines, and its exact line and record counts. */
export interface Corpus {
  readonly text: string;
  readonly lines: number;
  readonly records: number;
  readonly bytes: number;
}

/** Renders the RDS prefix for record number `n`: time, remote host and port. */
function prefix(n: number): string {
  const seconds = String(10 + (n % 50));
  return `2026-11-22 22:39:${seconds} UTC:10.0.${n % 4}.${10 + (n % 200)}(${36000 + (n % 20000)}):`;
}

/** Builds records one per template in turn until `lines` physical lines are written. */
export function buildCorpus(lines: number): Corpus {
  const parts: string[] = [];
  let count = 0;
  let records = 0;
  for (let n = 0; count < lines; n++) {
    const record = prefix(n) + TEMPLATES[n % TEMPLATES.length]!(n);
    parts.push(record);
    count += record.split('\n').length;
    records++;
  }
  const text = `${parts.join('\n')}\n`;
  return { text, lines: count, records, bytes: Buffer.byteLength(text) };
}

/**
 * CloudWatch Logs messages for the same records: one event per record with the
 * continuation lines embedded as `\n\t`, as RDS log export delivers them.
 */
export function buildEventMessages(targetBytes: number): string[] {
  const messages: string[] = [];
  let bytes = 0;
  for (let n = 0; bytes < targetBytes; n++) {
    const message = prefix(n) + TEMPLATES[n % TEMPLATES.length]!(n);
    messages.push(message);
    bytes += Buffer.byteLength(message);
  }
  return messages;
}
