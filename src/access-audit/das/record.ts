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
