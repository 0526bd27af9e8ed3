import type { AuditEvent } from '../types';
import { decryptDasRecord, messageSuiteId } from './decrypt';
import { TransientDataKeyError, type DataKeySource } from './keys';
import { normalizeDasEvent } from './normalize';
import { parseDasRecord } from './record';

/** A record, or one event of it, that could not be read. Counted and reported, never thrown. */
export interface DasFailure {
  /** Position of the record in the batch. */
  record: number;
  /** Position of the event in the record, when only that event was unreadable. */
  event?: number;
  /** Which step failed and why, e.g. `decrypt: unable to decrypt data key`. */
  error: string;
  /**
   * True when reading it again may succeed (KMS throttled, unreachable or failing); a
   * failure without it is the record's own (malformed, tampered, wrong key or context).
   */
  transient?: boolean;
}

/** A decoded event and where it came from. */
export interface DasDecodedEvent {
  record: number;
  /** Position of the event in its record's activity list (heartbeats included). */
  position: number;
  /** The instance that recorded it (the payload's `instanceId`), when given. */
  instanceId?: string;
  /** The cluster the payload names (`clusterId`), when given. */
  clusterId?: string;
  event: AuditEvent;
  /** The activity event exactly as decrypted from the record (what `sqs.format: raw` sends). */
  raw: unknown;
}

/** The outcome of decoding one batch of DAS records. */
export interface DasDecodeResult {
  events: DasDecodedEvent[];
  failures: DasFailure[];
  dropped: { heartbeat: number; rdsadmin: number };
  /** The Encryption SDK suites of the batch's messages, each once, in order of appearance. */
  suiteIds: number[];
}

/**
 * Decodes a batch of DAS Kinesis records (each the record's JSON text) into access
 * events, in order. A malformed or undecryptable record, or an unreadable event,
 * becomes a {@link DasFailure}; the rest of the batch is still decoded.
 *
 * @example
 * const { events, failures } = await decodeDasRecords(texts, kmsDataKeySource(kms, resourceId));
 */
export async function decodeDasRecords(
  records: readonly string[],
  keys: DataKeySource,
): Promise<DasDecodeResult> {
  const result: DasDecodeResult = {
    events: [],
    failures: [],
    dropped: { heartbeat: 0, rdsadmin: 0 },
    suiteIds: [],
  };
  for (const [index, text] of records.entries()) {
    let payload: Awaited<ReturnType<typeof decryptDasRecord>>;
    try {
      const record = parseDasRecord(text);
      const suiteId = messageSuiteId(record.databaseActivityEvents);
      if (suiteId !== undefined && !result.suiteIds.includes(suiteId))
        result.suiteIds.push(suiteId);
      payload = await decryptDasRecord(record, keys);
    } catch (error) {
      result.failures.push({
        record: index,
        error: (error as Error).message,
        ...(error instanceof TransientDataKeyError && { transient: true }),
      });
      continue;
    }
    const { instanceId, clusterId } = payload;
    for (const [position, raw] of payload.databaseActivityEventList.entries()) {
      const normalized = normalizeDasEvent(raw);
      if (normalized.kind === 'event')
        result.events.push({
          record: index,
          position,
          ...(instanceId !== undefined && { instanceId }),
          ...(clusterId !== undefined && { clusterId }),
          event: normalized.event,
          raw,
        });
      else if (normalized.kind === 'dropped') result.dropped[normalized.reason]++;
      else result.failures.push({ record: index, event: position, error: normalized.error });
    }
  }
  return result;
}
