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
 * Data keys from KMS, decrypted under the encryption context `aws:rds:dbc-id` = the
 * cluster's resource id (`cluster-ABC…`): KMS refuses a key from any other cluster,
 * and the decrypt role's key policy allows nothing else.
 *
 * @example
 * const keys = kmsDataKeySource(new KMSClient({}), 'cluster-4PWJ3DEXAMPLE');
 */
export function kmsDataKeySource(kms: KMSClient, clusterResourceId: string): DataKeySource {
  const context = dasEncryptionContext(clusterResourceId);
  return {
    async dataKey(encryptedKey) {
      const out = await kms.send(
        new DecryptCommand({ CiphertextBlob: encryptedKey, EncryptionContext: context }),
      );
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
