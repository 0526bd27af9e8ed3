import { z } from 'zod';

/**
 * One Kinesis record of a Database Activity Stream, as RDS writes it:
 * `databaseActivityEvents` is an AWS Encryption SDK message (base64) and `key` the
 * KMS-encrypted data key (base64) that opens it.
 */
export const dasRecordSchema = z.object({
  type: z.string(),
  version: z.string(),
  databaseActivityEvents: z.string().min(1),
  key: z.string().min(1),
});

/** One Kinesis record of a Database Activity Stream. */
export type DasRecord = z.infer<typeof dasRecordSchema>;

/**
 * One activity event inside a decrypted record. Only the fields the kit reads are
 * typed; RDS sends more (`serverHost`, `dbProtocol`, …) and may add fields: those are
 * accepted and left out of the parsed value (the raw event keeps them). A plain object
 * schema, not a loose one: zod compiles it to one function, and copying the unknown
 * fields cost four times the check on a DAS record's 50 events (BENCHMARKS 6).
 */
export const dasActivityEventSchema = z.object({
  type: z.string(),
  class: z.string().optional(),
  command: z.string().nullish(),
  commandText: z.string().nullish(),
  dbUserName: z.string().nullish(),
  databaseName: z.string().nullish(),
  remoteHost: z.string().nullish(),
  remotePort: z.union([z.string(), z.number()]).nullish(),
  sessionId: z.string().nullish(),
  clientApplication: z.string().nullish(),
  objectName: z.string().nullish(),
  objectType: z.string().nullish(),
  exitCode: z.union([z.number(), z.string()]).nullish(),
  errorMessage: z.string().nullish(),
  startTime: z.string().nullish(),
  logTime: z.string().nullish(),
  pid: z.union([z.number(), z.string()]).nullish(),
  statementId: z.union([z.number(), z.string()]).nullish(),
  substatementId: z.union([z.number(), z.string()]).nullish(),
  paramList: z.array(z.unknown()).nullish(),
  rowCount: z.union([z.number(), z.string()]).nullish(),
});

/** One activity event inside a decrypted record. */
export type DasActivityEvent = z.infer<typeof dasActivityEventSchema>;

/**
 * True only where {@link dasActivityEventSchema} accepts `value` with its own field values
 * (zod's parse would copy them unchanged into a new object): the decrypt function then
 * reads the event itself. Anything else (false) goes to zod, which says what is wrong.
 * Field by field, by name: zod's generic parse of a DAS record's 50 events was about a
 * tenth of their normalisation (BENCHMARKS 6). Must never accept what the schema
 * refuses: a test holds the two to the same verdict for every field and kind of value
 * (fields read from the schema, so a field added there and not here fails it). Plain
 * data only (JSON): a getter could answer differently when read again.
 */
export function isPlainActivityEvent(value: unknown): value is DasActivityEvent {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const event = value as Record<string, unknown>;
  return (
    typeof event.type === 'string' &&
    (event.class === undefined || typeof event.class === 'string') &&
    textOrAbsent(event.command) &&
    textOrAbsent(event.commandText) &&
    textOrAbsent(event.dbUserName) &&
    textOrAbsent(event.databaseName) &&
    textOrAbsent(event.remoteHost) &&
    textNumberOrAbsent(event.remotePort) &&
    textOrAbsent(event.sessionId) &&
    textOrAbsent(event.clientApplication) &&
    textOrAbsent(event.objectName) &&
    textOrAbsent(event.objectType) &&
    textNumberOrAbsent(event.exitCode) &&
    textOrAbsent(event.errorMessage) &&
    textOrAbsent(event.startTime) &&
    textOrAbsent(event.logTime) &&
    textNumberOrAbsent(event.pid) &&
    textNumberOrAbsent(event.statementId) &&
    textNumberOrAbsent(event.substatementId) &&
    (event.paramList == null || Array.isArray(event.paramList)) &&
    textNumberOrAbsent(event.rowCount)
  );
}

/** `z.string().nullish()`. */
function textOrAbsent(value: unknown): boolean {
  return value == null || typeof value === 'string';
}

/** `z.union([z.string(), z.number()]).nullish()`: zod's numbers are finite. */
function textNumberOrAbsent(value: unknown): boolean {
  return (
    value == null ||
    typeof value === 'string' ||
    (typeof value === 'number' && Number.isFinite(value))
  );
}

/** The decrypted, gunzipped payload of one record. */
export const dasActivityPayloadSchema = z.looseObject({
  type: z.string(),
  clusterId: z.string().optional(),
  instanceId: z.string().optional(),
  databaseActivityEventList: z.array(z.unknown()),
});

/** The decrypted, gunzipped payload of one record. */
export type DasActivityPayload = z.infer<typeof dasActivityPayloadSchema>;

/** Parses the JSON of one Kinesis record; throws a message naming what is wrong. */
export function parseDasRecord(json: string): DasRecord {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new Error(`record is not JSON: ${(error as Error).message}`);
  }
  const parsed = dasRecordSchema.safeParse(value);
  if (!parsed.success) throw new Error(`not a DAS record: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** Short "field: problem" list of a zod error. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}
