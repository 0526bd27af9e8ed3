import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';

/** The Lambda event of a CloudWatch Logs subscription. */
export interface CloudWatchLogsEvent {
  awslogs: { data: string };
}

/** One log event of a subscription payload. */
export interface SubscriptionLogEvent {
  id: string;
  timestamp: number;
  message: string;
}

/** The decoded payload: `DATA_MESSAGE` carries log events, `CONTROL_MESSAGE` only checks the destination. */
export interface SubscriptionPayload {
  messageType: string;
  logGroup: string;
  logStream: string;
  /** Raw entries; each is validated on its own so one bad entry does not lose the others. */
  logEvents: unknown[];
}

/** Thrown for a payload that is not base64 gzip JSON of the expected shape. */
export class PayloadError extends Error {
  override readonly name = 'PayloadError';
}

/** A gzip bomb must not exhaust the Lambda's memory: payloads are at most ~1 MB unzipped in practice. */
const MAX_UNZIPPED_BYTES = 32 * 1024 * 1024;

const payloadSchema = z.object({
  messageType: z.string(),
  logGroup: z.string().default(''),
  logStream: z.string().default(''),
  logEvents: z.array(z.unknown()).default([]),
});

const logEventSchema = z.object({
  id: z.string(),
  timestamp: z.number(),
  message: z.string(),
});

/**
 * Decodes `{"awslogs":{"data": base64(gzip(JSON))}}`.
 * @throws PayloadError when any layer is malformed.
 */
export function decodePayload(event: unknown): SubscriptionPayload {
  const data = (event as { awslogs?: { data?: unknown } } | null | undefined)?.awslogs?.data;
  if (typeof data !== 'string') throw new PayloadError('event has no awslogs.data string');
  let text: string;
  try {
    text = gunzipSync(Buffer.from(data, 'base64'), {
      maxOutputLength: MAX_UNZIPPED_BYTES,
    }).toString('utf8');
  } catch (error) {
    throw new PayloadError(`awslogs.data is not base64 gzip: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new PayloadError(`awslogs.data is not JSON: ${(error as Error).message}`);
  }
  const parsed = payloadSchema.safeParse(json);
  if (!parsed.success)
    throw new PayloadError('awslogs.data is not a CloudWatch Logs subscription payload');
  return parsed.data;
}

/** Validates one entry of `logEvents`; `undefined` when it lacks id, timestamp or message. */
export function toLogEvent(entry: unknown): SubscriptionLogEvent | undefined {
  const parsed = logEventSchema.safeParse(entry);
  return parsed.success ? parsed.data : undefined;
}

/** Builds a payload the way CloudWatch Logs does (for tests and local replays). */
export function encodePayload(payload: SubscriptionPayload): CloudWatchLogsEvent {
  return { awslogs: { data: gzipSync(Buffer.from(JSON.stringify(payload))).toString('base64') } };
}
