import type { Lsn } from './lsn';
import type { PgTimestamp } from './pg-time';

/**
 * One column value of a pgoutput tuple, exactly as PostgreSQL sent it: the type's
 * text output (never parsed into a JS value, so nothing is rounded), `null`, or
 * {@link UNCHANGED_TOAST} when an unchanged TOASTed value was not sent at all.
 */
export type TupleValue = string | null | typeof UNCHANGED_TOAST;

/** Marker for pgoutput's `u` kind: an unchanged TOASTed value that was not sent. */
export const UNCHANGED_TOAST: unique symbol = Symbol('unchanged-toast');

/** A relation as described by a pgoutput `R` message. */
export interface RelationMessage {
  readonly tag: 'relation';
  readonly relationId: number;
  readonly schema: string;
  readonly table: string;
  /** `d` default, `n` nothing, `f` full, `i` index. */
  readonly replicaIdentity: string;
  readonly columns: readonly {
    readonly name: string;
    readonly typeOid: number;
    readonly typeModifier: number;
    readonly isKey: boolean;
  }[];
}

/** Every pgoutput (protocol version 1) message the engine handles. */
export type PgOutputMessage =
  | {
      readonly tag: 'begin';
      /** LSN of the transaction's commit record. */
      readonly commitLsn: Lsn;
      readonly commitTime: PgTimestamp;
      readonly xid: number;
    }
  | {
      readonly tag: 'commit';
      readonly commitLsn: Lsn;
      /** End of the commit record: the position to confirm once the transaction is applied. */
      readonly endLsn: Lsn;
      readonly commitTime: PgTimestamp;
    }
  | RelationMessage
  | { readonly tag: 'insert'; readonly relationId: number; readonly newTuple: TupleValue[] }
  | {
      readonly tag: 'update';
      readonly relationId: number;
      /** `K`: the old key (only when the key changed); `O`: the whole old row (REPLICA IDENTITY FULL). */
      readonly oldKind: 'K' | 'O' | null;
      readonly oldTuple: TupleValue[] | null;
      readonly newTuple: TupleValue[];
    }
  | {
      readonly tag: 'delete';
      readonly relationId: number;
      readonly oldKind: 'K' | 'O';
      readonly oldTuple: TupleValue[];
    }
  | { readonly tag: 'truncate'; readonly relationIds: number[] }
  | { readonly tag: 'origin' | 'type' | 'message' | 'other'; readonly code: string };

/**
 * Decodes one pgoutput message (the payload of an XLogData `w` message). Values stay
 * PostgreSQL text; see https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 */
export function decodePgOutput(buffer: Buffer): PgOutputMessage {
  const reader = new Reader(buffer);
  const code = String.fromCharCode(reader.uint8());
  switch (code) {
    case 'B':
      return {
        tag: 'begin',
        commitLsn: reader.uint64(),
        commitTime: reader.int64(),
        xid: reader.uint32(),
      };
    case 'C': {
      reader.uint8(); // flags, unused
      return {
        tag: 'commit',
        commitLsn: reader.uint64(),
        endLsn: reader.uint64(),
        commitTime: reader.int64(),
      };
    }
    case 'R':
      return decodeRelation(reader);
    case 'I': {
      const relationId = reader.uint32();
      reader.expectByte('N');
      return { tag: 'insert', relationId, newTuple: reader.tuple() };
    }
    case 'U':
      return decodeUpdate(reader);
    case 'D': {
      const relationId = reader.uint32();
      const oldKind = reader.char() as 'K' | 'O';
      return { tag: 'delete', relationId, oldKind, oldTuple: reader.tuple() };
    }
    case 'T': {
      const count = reader.uint32();
      reader.uint8(); // options
      const relationIds = Array.from({ length: count }, () => reader.uint32());
      return { tag: 'truncate', relationIds };
    }
    case 'O':
      return { tag: 'origin', code };
    case 'Y':
      return { tag: 'type', code };
    case 'M':
      return { tag: 'message', code };
    default:
      return { tag: 'other', code };
  }
}

function decodeRelation(reader: Reader): RelationMessage {
  const relationId = reader.uint32();
  const schema = reader.cstring();
  const table = reader.cstring();
  const replicaIdentity = reader.char();
  const count = reader.uint16();
  const columns = Array.from({ length: count }, () => {
    const flags = reader.uint8();
    return {
      isKey: (flags & 1) === 1,
      name: reader.cstring(),
      typeOid: reader.uint32(),
      typeModifier: reader.int32(),
    };
  });
  return { tag: 'relation', relationId, schema, table, replicaIdentity, columns };
}

function decodeUpdate(reader: Reader): PgOutputMessage {
  const relationId = reader.uint32();
  let kind = reader.char();
  let oldKind: 'K' | 'O' | null = null;
  let oldTuple: TupleValue[] | null = null;
  if (kind === 'K' || kind === 'O') {
    oldKind = kind;
    oldTuple = reader.tuple();
    kind = reader.char();
  }
  if (kind !== 'N') throw new Error(`pgoutput: unexpected update tuple kind ${kind}`);
  return { tag: 'update', relationId, oldKind, oldTuple, newTuple: reader.tuple() };
}

/** A cursor over a big-endian protocol buffer. */
class Reader {
  private offset = 0;
  constructor(private readonly buffer: Buffer) {}

  uint8(): number {
    return this.buffer.readUInt8(this.offset++);
  }
  char(): string {
    return String.fromCharCode(this.uint8());
  }
  expectByte(expected: string): void {
    const actual = this.char();
    if (actual !== expected) throw new Error(`pgoutput: expected ${expected}, got ${actual}`);
  }
  uint16(): number {
    const value = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }
  int32(): number {
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  uint32(): number {
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  uint64(): bigint {
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }
  int64(): bigint {
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }
  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) throw new Error('pgoutput: unterminated string');
    const value = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return value;
  }
  tuple(): TupleValue[] {
    const count = this.uint16();
    const values: TupleValue[] = new Array<TupleValue>(count);
    for (let index = 0; index < count; index++) {
      const kind = this.char();
      if (kind === 'n') values[index] = null;
      else if (kind === 'u') values[index] = UNCHANGED_TOAST;
      else if (kind === 't') {
        const length = this.uint32();
        values[index] = this.buffer.toString('utf8', this.offset, this.offset + length);
        this.offset += length;
      } else
        throw new Error(`pgoutput: unsupported tuple value kind ${kind} (binary mode is not used)`);
    }
    return values;
  }
}
