import { z } from 'zod';

/** PostgreSQL truncates identifiers longer than NAMEDATALEN - 1 bytes. */
const MAX_IDENTIFIER_BYTES = 63;

/**
 * A PostgreSQL identifier (schema, table, column or role name) exactly as it is
 * spelled in the catalog. Any character is allowed: identifiers are always quoted
 * when they reach SQL, never interpolated, so `Weird "Name"` is as safe as `items`.
 */
export const identifierSchema = z
  .string()
  .min(1, 'must not be empty')
  .refine((value) => !value.includes('\u0000'), 'must not contain a NUL character')
  .refine(
    (value) => Buffer.byteLength(value, 'utf8') <= MAX_IDENTIFIER_BYTES,
    `must be at most ${MAX_IDENTIFIER_BYTES} bytes (PostgreSQL would truncate it)`,
  );
