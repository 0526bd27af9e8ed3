import { AuditTrailError } from '../errors';

/** Thrown for a context that cannot be written (missing required field, set twice, no transaction). */
export class AuditContextError extends AuditTrailError {
  override readonly name = 'AuditContextError';
}
