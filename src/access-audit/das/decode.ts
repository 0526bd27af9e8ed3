import type { AuditEvent } from '../types';
import { decryptDasRecord } from './decrypt';
import type { DataKeySource } from './keys';
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
}

/** A decoded event and the record it came from. */
export interface DasDecodedEvent {
  record: number;
  event: AuditEvent;
}

/** The outcome of decoding one batch of DAS records. */
export interface DasDecodeResult {
  events: DasDecodedEvent[];
  failures: DasFailure[];
  dropped: { heartbeat: number; rdsadmin: number };
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
  };
  for (const [index, text] of records.entries()) {
    let list: unknown[];
    try {
      list = (await decryptDasRecord(parseDasRecord(text), keys)).databaseActivityEventList;
    } catch (error) {
      result.failures.push({ record: index, error: (error as Error).message });
      continue;
    }
    for (const [position, raw] of list.entries()) {
      const normalized = normalizeDasEvent(raw);
      if (normalized.kind === 'event')
        result.events.push({ record: index, event: normalized.event });
      else if (normalized.kind === 'dropped') result.dropped[normalized.reason]++;
      else result.failures.push({ record: index, event: position, error: normalized.error });
    }
  }
  return result;
}
