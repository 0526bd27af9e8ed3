import pg from 'pg';
import { AuditTrailError } from '../errors';
import { pinnedClientConfig } from '../postgres/connect';
import { quoteIdent, quoteLiteral } from '../postgres/identifiers';
import { formatLsn, parseLsn, type Lsn } from './lsn';
import { nowPgTimestamp, type PgTimestamp } from './pg-time';
import { ConnectionLostError, isConnectionLoss } from './reconnect';

/** A message of the streaming replication sub-protocol (inside CopyData). */
export type StreamMessage =
  | {
      readonly kind: 'data';
      /** LSN of the WAL record the payload was decoded from. */
      readonly start: Lsn;
      /** The server's current end of WAL. */
      readonly walEnd: Lsn;
      readonly payload: Buffer;
    }
  | {
      readonly kind: 'keepalive';
      /** Everything decoded before this position has been sent before this message. */
      readonly walEnd: Lsn;
      readonly sendTime: PgTimestamp;
      readonly replyRequested: boolean;
    };

/** The slot a {@link ReplicationConnection.createSlot} call made. */
export interface CreatedSlot {
  readonly consistentPoint: Lsn;
  /** Snapshot to import with `SET TRANSACTION SNAPSHOT`; valid until the next command on this connection. */
  readonly snapshotName: string;
}

/** The parts of node-postgres's internal connection the stream needs. */
interface WireConnection {
  readonly stream: NodeJS.ReadableStream;
  sendCopyFromChunk(chunk: Buffer): void;
}

/** Limits for the in-memory queue between the socket and the applier. */
const PAUSE_AT = 2_000;
const RESUME_AT = 200;

/**
 * A `replication=database` connection: runs replication commands and the CopyBoth
 * stream of `START_REPLICATION`. Messages are queued and pulled with {@link next};
 * the socket is paused while the queue is long, so memory stays bounded however
 * fast the server sends.
 */
export class ReplicationConnection {
  private readonly client: pg.Client;
  private readonly queue: StreamMessage[] = [];
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private ended = false;
  private paused = false;
  private streaming = false;
  private interrupted = false;

  constructor(url: string, applicationName = 'audit-trail-engine') {
    // pgoutput prints values with the walsender's settings: pinned like every connection.
    this.client = new pg.Client({
      ...pinnedClientConfig(url, applicationName),
      replication: 'database',
    } as pg.ClientConfig);
    this.client.on('error', (error) => this.fail(error));
  }

  /** Opens the connection. */
  /**
   * @throws AuditTrailError `SOURCE_PRIVILEGE_MISSING` when the server refuses a
   *   replication connection to the login (42501: no REPLICATION attribute)
   */
  async connect(): Promise<void> {
    try {
      await this.client.connect();
    } catch (error) {
      if ((error as { code?: unknown }).code !== '42501') throw error;
      const login = this.client.user ?? '?';
      throw new AuditTrailError(
        `the engine's source login ${login} may not open a replication connection ` +
          `(${(error as Error).message}): it needs the REPLICATION attribute (on RDS and ` +
          'Aurora, membership in rds_replication); nothing was applied',
        {
          code: 'SOURCE_PRIVILEGE_MISSING',
          kind: 'usage',
          hint:
            `as the source's administrator run ALTER ROLE ${quoteIdent(login)} REPLICATION ` +
            `(RDS and Aurora: GRANT rds_replication TO ${quoteIdent(login)})`,
          cause: error,
        },
      );
    }
  }

  /** Runs a replication command (simple query protocol) and returns its rows. */
  async command(text: string): Promise<Record<string, string | null>[]> {
    const result = await this.client.query<Record<string, string | null>>(text);
    return result.rows;
  }

  /**
   * `CREATE_REPLICATION_SLOT ... LOGICAL pgoutput EXPORT_SNAPSHOT`; a temporary slot is
   * dropped when this connection closes (used only for its snapshot).
   */
  async createSlot(slot: string, temporary = false): Promise<CreatedSlot> {
    const [row] = await this.command(
      `CREATE_REPLICATION_SLOT ${quoteIdent(slot)} ${temporary ? 'TEMPORARY ' : ''}LOGICAL pgoutput EXPORT_SNAPSHOT`,
    );
    if (!row?.consistent_point || !row.snapshot_name) {
      throw new Error(`CREATE_REPLICATION_SLOT ${slot} returned no snapshot`);
    }
    return { consistentPoint: parseLsn(row.consistent_point), snapshotName: row.snapshot_name };
  }

  /** Starts streaming pgoutput for `publication` from `startLsn`. */
  startReplication(slot: string, publication: string, startLsn: Lsn): void {
    const text =
      `START_REPLICATION SLOT ${quoteIdent(slot)} LOGICAL ${formatLsn(startLsn)} ` +
      `(proto_version '1', publication_names ${quoteLiteral(quoteIdent(publication))})`;
    this.streaming = true;
    void this.client.query(this.replicationQuery(text));
  }

  /**
   * Waits for the next stream message; `null` once the stream has ended.
   * @throws the connection's error, if it failed.
   */
  async next(): Promise<StreamMessage | null> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.interrupted) return null;
      const message = this.queue.shift();
      if (message) {
        if (this.paused && this.queue.length <= RESUME_AT) this.setPaused(false);
        return message;
      }
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** Makes a waiting or later {@link next} return `null` (used to stop). */
  interrupt(): void {
    this.interrupted = true;
    this.wake();
  }

  /**
   * Makes a waiting or later {@link next} throw `error`: another connection of the
   * engine was lost, so this run ends and the engine reconnects.
   */
  abort(error: Error): void {
    this.fail(error);
  }

  /** Messages received but not yet pulled. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Sends a standby status update: everything up to `flushed` is durably applied, so
   * the server may advance the slot's confirmed position there.
   */
  sendStatus(flushed: Lsn, replyRequested = false): void {
    if (!this.streaming || this.ended || this.failure) return;
    const message = Buffer.alloc(34);
    message.write('r', 0);
    message.writeBigUInt64BE(flushed, 1); // written
    message.writeBigUInt64BE(flushed, 9); // flushed
    message.writeBigUInt64BE(flushed, 17); // applied
    message.writeBigInt64BE(nowPgTimestamp(), 25);
    message.writeUInt8(replyRequested ? 1 : 0, 33);
    this.connection().sendCopyFromChunk(message);
  }

  /** Closes the connection (ending the stream first, when one runs). */
  async close(): Promise<void> {
    this.ended = true;
    this.wake();
    await this.client.end().catch(() => undefined);
  }

  private replicationQuery(text: string): pg.Submittable {
    const handlers = {
      text,
      submit: (connection: { query(text: string): void }) => connection.query(text),
      handleCopyData: (message: { chunk: Buffer }) => this.receive(message.chunk),
      handleError: (error: Error) => this.fail(error),
      handleReadyForQuery: () => {
        this.ended = true;
        this.wake();
      },
      handleCommandComplete: () => undefined,
      handleRowDescription: () => undefined,
      handleDataRow: () => undefined,
      handleEmptyQuery: () => undefined,
      handlePortalSuspended: () => undefined,
      handleCopyInResponse: () => undefined,
    };
    return handlers as unknown as pg.Submittable;
  }

  private receive(received: Buffer): void {
    // node-postgres's parser reuses its read buffer: keep a copy, not a view.
    const chunk = Buffer.from(received);
    const code = String.fromCharCode(chunk[0] ?? 0);
    if (code === 'w') {
      this.queue.push({
        kind: 'data',
        start: chunk.readBigUInt64BE(1),
        walEnd: chunk.readBigUInt64BE(9),
        payload: chunk.subarray(25),
      });
    } else if (code === 'k') {
      this.queue.push({
        kind: 'keepalive',
        walEnd: chunk.readBigUInt64BE(1),
        sendTime: chunk.readBigInt64BE(9),
        replyRequested: chunk.readUInt8(17) === 1,
      });
    }
    if (!this.paused && this.queue.length >= PAUSE_AT) this.setPaused(true);
    this.wake();
  }

  private setPaused(paused: boolean): void {
    this.paused = paused;
    const socket = this.connection().stream;
    if (paused) socket.pause();
    else socket.resume();
  }

  private connection(): WireConnection {
    return (this.client as unknown as { connection: WireConnection }).connection;
  }

  private fail(error: Error): void {
    this.failure ??=
      isConnectionLoss(error) && !(error instanceof ConnectionLostError)
        ? new ConnectionLostError('source', error)
        : error;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }
}
