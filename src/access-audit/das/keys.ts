import { DecryptCommand, type KMSClient } from '@aws-sdk/client-kms';

/** Opens the encrypted data key of one DAS record. */
export interface DataKeySource {
  /** The 32-byte plaintext data key for `encryptedKey` (the record's `key`, base64-decoded). */
  dataKey(encryptedKey: Uint8Array): Promise<Uint8Array>;
}

/** The encryption context RDS binds every DAS data key to. */
export function dasEncryptionContext(clusterResourceId: string): Record<string, string> {
  return { 'aws:rds:dbc-id': clusterResourceId };
}

/**
 * KMS errors that say the record's data key or its encryption context is wrong: asking
 * again cannot help. Every other KMS or network error (throttling, timeouts, service
 * errors, a key policy being changed) may pass and is a {@link TransientDataKeyError}.
 */
const PERMANENT_KMS_ERRORS = new Set([
  'InvalidCiphertextException',
  'IncorrectKeyException',
  'InvalidKeyUsageException',
]);

/** KMS could not be asked or did not answer (throttled, unreachable, failing): retry the record. */
export class TransientDataKeyError extends Error {
  override readonly name = 'TransientDataKeyError';
}

/**
 * Data keys from KMS, decrypted under the encryption context `aws:rds:dbc-id` = the
 * cluster's resource id (`cluster-ABC…`): KMS refuses a key from any other cluster,
 * and the decrypt role's key policy allows nothing else. An error that may pass
 * (throttling, network, service) is thrown as a {@link TransientDataKeyError}.
 *
 * @example
 * const keys = kmsDataKeySource(new KMSClient({}), 'cluster-4PWJ3DEXAMPLE');
 */
export function kmsDataKeySource(kms: KMSClient, clusterResourceId: string): DataKeySource {
  const context = dasEncryptionContext(clusterResourceId);
  return {
    async dataKey(encryptedKey) {
      let out;
      try {
        out = await kms.send(
          new DecryptCommand({ CiphertextBlob: encryptedKey, EncryptionContext: context }),
        );
      } catch (error) {
        const { name, message } = error as Error;
        if (PERMANENT_KMS_ERRORS.has(name)) throw error;
        throw new TransientDataKeyError(`KMS Decrypt: ${name}: ${message}`, { cause: error });
      }
      if (out.Plaintext === undefined) throw new Error('KMS Decrypt returned no plaintext');
      return out.Plaintext;
    },
  };
}

/**
 * One plaintext data key for every record (`audit-trail das decode --data-key-file`):
 * the KMS step done elsewhere, for records captured from one stream.
 */
export function staticDataKeySource(key: Uint8Array): DataKeySource {
  if (key.length !== 32)
    throw new Error(`a DAS data key is 32 bytes (AES-256); this one is ${key.length}`);
  return { dataKey: () => Promise.resolve(key) };
}

/**
 * Remembers the data keys `source` opened, by their ciphertext, for one Kinesis batch:
 * RDS encrypts many records with one data key, and each KMS call costs a round trip.
 * Only ever wrap a source bound to one encryption context (one cluster), so a cached key
 * can only answer for a ciphertext KMS already opened under that context. A failed
 * lookup is not remembered. Keep the cache no longer than a batch.
 *
 * @example
 * const keys = cachedDataKeySource(kmsDataKeySource(kms, clusterResourceId));
 */
export function cachedDataKeySource(source: DataKeySource, maxEntries = 64): DataKeySource {
  const cache = new Map<string, Promise<Uint8Array>>();
  return {
    dataKey(encryptedKey) {
      const id = Buffer.from(encryptedKey).toString('base64');
      const known = cache.get(id);
      if (known) return known;
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
      const opened = source.dataKey(encryptedKey);
      cache.set(id, opened);
      opened.catch(() => cache.delete(id));
      return opened;
    },
  };
}
