import type { LocatedAlert } from '../access-alert/messages';
import {
  forwardedEvents,
  kitEntries,
  type Classified,
  type QueueMessage,
} from '../access-alert/processor';
import type { AlertLambdaSettings } from '../access-alert/settings';

/** One decoded activity event of a record, with what the queue's raw format needs. */
export interface ForwardableEvent extends Classified {
  /** The activity event exactly as decrypted. */
  readonly raw: unknown;
  /** Position of the event in its record's activity list. */
  readonly position: number;
  readonly clusterId?: string;
  readonly instanceId?: string;
}

/** Where a record sits in the stream. */
export interface StreamPosition {
  readonly streamArn: string;
  readonly sequenceNumber: string;
}

/**
 * What `sqs.format: raw` sends for Database Activity Streams: one activity event exactly
 * as RDS wrote it (decrypted and gunzipped, every field kept), with the cluster and
 * instance its record names and its place in the stream. `id` is the archive's
 * `event_id`, so a queue message and an archived line can be matched.
 */
export interface RawActivityMessage {
  /** `<Kinesis event id>/<position>`: stable when Lambda retries the record. */
  readonly id: string;
  readonly streamArn: string;
  readonly sequenceNumber: string;
  readonly position: number;
  readonly clusterId?: string;
  readonly instanceId?: string;
  readonly activityEvent: unknown;
  /** True when `commandText`, `paramList` or `errorMessage` were cut to fit an SQS message. */
  readonly truncated: boolean;
}

/** SQS takes 256 KiB per message and per batch; the forwarder batches up to 240 KiB. */
export const MAX_RAW_MESSAGE_BYTES = 240 * 1024;

/**
 * The queue messages of one record, in the order the pgAudit path sends them: the kit's
 * JSON (alerts, or with `forward: "events"` every alert and pass) unless the format is
 * `raw`, then with `raw`/`both` each of those events as RDS wrote it. The queue's ignore
 * lists apply to both (by the event's user and database); heartbeats and `rdsadmin`
 * never reach here.
 */
export function dasQueueMessages(
  events: readonly ForwardableEvent[],
  alerts: readonly LocatedAlert[],
  stream: StreamPosition,
  settings: AlertLambdaSettings,
): QueueMessage[] {
  if (settings.queueUrl === undefined) return [];
  const { sqs } = settings.config;
  const kit = kitEntries(events, alerts, settings);
  if (sqs.forward !== 'events' || sqs.format === 'kit') return kit;
  const raw = (forwardedEvents(events) as ForwardableEvent[]).map((item): QueueMessage => ({
    user: item.event.user,
    database: item.event.database,
    logStream: item.source.logStream,
    deduplicationId: `raw-${item.source.logEventId}`,
    body: rawActivityMessage(item, stream),
    format: 'raw',
  }));
  return [...kit, ...raw];
}

function rawActivityMessage(item: ForwardableEvent, stream: StreamPosition): RawActivityMessage {
  const message: RawActivityMessage = {
    id: item.source.logEventId,
    streamArn: stream.streamArn,
    sequenceNumber: stream.sequenceNumber,
    position: item.position,
    ...(item.clusterId !== undefined && { clusterId: item.clusterId }),
    ...(item.instanceId !== undefined && { instanceId: item.instanceId }),
    activityEvent: item.raw,
    truncated: false,
  };
  return fitted(message);
}

/**
 * The message itself when it fits {@link MAX_RAW_MESSAGE_BYTES}; otherwise the event loses
 * its bind values, then as much of its statement text and error message as needed, and is
 * flagged `truncated` (the archive keeps up to 1,000 KiB of it under the same id).
 */
function fitted(message: RawActivityMessage): RawActivityMessage {
  let current = message;
  for (const field of ['paramList', 'commandText', 'errorMessage'] as const) {
    const size = Buffer.byteLength(JSON.stringify(current));
    if (size <= MAX_RAW_MESSAGE_BYTES) return current;
    const event = current.activityEvent as Record<string, unknown>;
    current = {
      ...current,
      truncated: true,
      activityEvent: { ...event, [field]: shortened(event[field], size) },
    };
  }
  return current;
}

/** `value` shortened by enough to take `size` bytes of JSON under the limit. */
function shortened(value: unknown, size: number): unknown {
  if (Array.isArray(value)) return [];
  if (typeof value !== 'string') return value;
  const room = MAX_RAW_MESSAGE_BYTES - (size - Buffer.byteLength(JSON.stringify(value)));
  // Escaping can make one UTF-16 unit cost up to 6 bytes of JSON: cut by that worst case.
  return value.slice(0, Math.max(0, Math.floor((room - 2) / 6)));
}
