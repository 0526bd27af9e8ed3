import { AuditTrailError } from '../errors';
import { ConnectionError } from '../postgres/connect';
import type { ReconnectPolicy } from './reconnect-policy';

export { DEFAULT_RECONNECT_POLICY, type ReconnectPolicy } from './reconnect-policy';

/**
 * The wait before retry number `attempt` (1, 2, ...): exponential, capped at
 * `maxDelayMs`, with "equal jitter" (between half and all of the step) so engines that
 * lost the same server do not all come back in the same millisecond.
 *
 * @example
 * ```ts
 * reconnectDelay(3, DEFAULT_RECONNECT_POLICY); // between 2000 and 4000
 * ```
 */
export function reconnectDelay(
  attempt: number,
  policy: Pick<ReconnectPolicy, 'initialDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number {
  const step = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** Node socket errors that mean the peer went away or cannot be reached right now. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of a server going away or not ready yet: class 08 (connection exception),
 * admin/crash shutdown, "the database system is starting up", too many connections,
 * and a replication slot still held by the walsender of the lost connection.
 */
const TRANSIENT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '55006']);

/** node-postgres's messages for a connection that ended under it. */
const LOST_MESSAGES =
  /Connection terminated|connection timeout|not queryable|Query read timeout|socket hang up/i;

/**
 * Whether `error` means a database connection was lost or cannot be made right now
 * (worth retrying), as opposed to a fault that a retry would only repeat (a schema
 * change, a gone slot, a refused setup, a bug). Looks through `cause` chains.
 */
export function isConnectionLoss(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    if (current instanceof ConnectionLostError || current instanceof ConnectionError) return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (NETWORK_CODES.has(code) || TRANSIENT_SQLSTATES.has(code) || /^08/.test(code)) return true;
    }
    if (current instanceof Error && !(current instanceof AuditTrailError)) {
      if (LOST_MESSAGES.test(current.message)) return true;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Which database a connection error came from, when the kit can tell. */
export type ConnectionSide = 'source' | 'target';

/** A connection the engine holds was lost while it ran. */
export class ConnectionLostError extends AuditTrailError {
  override readonly name = 'ConnectionLostError';
  constructor(
    readonly side: ConnectionSide,
    cause: unknown,
  ) {
    super(`${side}: connection lost: ${cause instanceof Error ? cause.message : String(cause)}`, {
      code: 'CONNECTION_LOST',
      kind: 'connection',
      cause,
    });
  }
}

/** The engine retried one outage for longer than its give-up time and stopped. */
export class EngineGaveUpError extends AuditTrailError {
  override readonly name = 'EngineGaveUpError';
  constructor(downForMs: number, attempts: number, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      `engine stopped: no database connection for ${Math.round(downForMs / 1000)} s ` +
        `(${attempts} attempts); last error: ${reason}`,
      {
        code: 'ENGINE_GAVE_UP',
        kind: 'connection',
        cause,
        hint:
          'start replicate again once the databases are reachable: it resumes from the ' +
          'last applied position (raise --give-up-after to wait longer)',
      },
    );
  }
}

/** The side named by a connection error, when it names one. */
export function sideOf(error: unknown): ConnectionSide | undefined {
  if (error instanceof ConnectionLostError) return error.side;
  if (error instanceof ConnectionError) {
    if (error.message.startsWith('source:')) return 'source';
    if (error.message.startsWith('target:')) return 'target';
  }
  return undefined;
}
