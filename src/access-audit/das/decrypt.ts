import { ECDH } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import {
  AlgorithmSuiteIdentifier,
  NodeDecryptionMaterial,
  NodeDefaultCryptographicMaterialsManager,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  type EncryptionContext,
  type NodeAlgorithmSuite,
} from '@aws-crypto/client-node';
import { VerificationKey } from '@aws-crypto/material-management';
import { TransientDataKeyError, type DataKeySource } from './keys';
import { decryptMessage } from './message';
import {
  dasActivityPayloadSchema,
  describeIssues,
  type DasActivityPayload,
  type DasRecord,
} from './record';

/**
 * The raw AES keyring RDS wraps each DAS payload with: namespace `BC`, name `DataKey`.
 * The keyring zeroes the key it is given and wants an isolated buffer, so it gets a
 * copy: one data key may open many records.
 */
export function dasKeyring(dataKey: Uint8Array): RawAesKeyringNode {
  return new RawAesKeyringNode({
    keyNamespace: 'BC',
    keyName: 'DataKey',
    unencryptedMasterKey: new Uint8Array(dataKey),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
}

/** The encryption context key of a signed message's public key (Encryption SDK format). */
const SIGNER_KEY_CONTEXT = 'aws-crypto-public-key';

/**
 * The SDK's default materials manager, except that a signed message's public key (a
 * compressed point in the message's encryption context) is read by OpenSSL instead of the
 * SDK's pure-JavaScript big-number code, which cost a third of the decrypt time of a
 * signed DAS message. Nothing is skipped: the point must be a compressed point of the
 * suite's curve (OpenSSL refuses any other), the signature is still verified over the
 * whole message by the SDK, and unsigned suites take the SDK's own path unchanged (which
 * refuses a public key in their context).
 */
class DasMaterialsManager extends NodeDefaultCryptographicMaterialsManager {
  override _initializeDecryptionMaterial(
    suite: NodeAlgorithmSuite,
    encryptionContext: EncryptionContext,
  ): NodeDecryptionMaterial {
    const curve = suite.signatureCurve;
    if (!curve) return super._initializeDecryptionMaterial(suite, encryptionContext);
    const encoded = encryptionContext?.[SIGNER_KEY_CONTEXT];
    if (!encoded) throw new Error('Context does not contain required public key.');
    const compressed = Buffer.from(encoded, 'base64');
    // A compressed point: 02 or 03, then x (as long as the curve's field).
    const fieldBytes = curve === 'secp384r1' ? 48 : curve === 'prime256v1' ? 32 : 0;
    if (compressed.length !== fieldBytes + 1 || (compressed[0] !== 2 && compressed[0] !== 3))
      throw new Error('Compressed point length is not correct.');
    const point = ECDH.convertKey(compressed, curve, undefined, undefined, 'uncompressed');
    return new NodeDecryptionMaterial(suite, encryptionContext).setVerificationKey(
      new VerificationKey(new Uint8Array(point as Buffer), suite),
    );
  }
}

/**
 * Materials managers by data key object: a cached data key opens every record of its
 * batch with one keyring.
 */
const managers = new WeakMap<Uint8Array, DasMaterialsManager>();

function managerFor(dataKey: Uint8Array): DasMaterialsManager {
  let manager = managers.get(dataKey);
  if (manager === undefined) {
    manager = new DasMaterialsManager(dasKeyring(dataKey));
    managers.set(dataKey, manager);
  }
  return manager;
}

/**
 * The algorithm suite id of an Encryption SDK message (base64), read from its header
 * (message format version 1: version, type, suite; version 2: version, suite), without
 * decoding the rest; undefined when the text is not such a message. AWS does not document
 * which suite RDS writes DAS payloads with, and a signed suite (ECDSA P-384) costs most of
 * the decrypt time: the decrypt function reports what it sees.
 *
 * @example
 * messageSuiteId(record.databaseActivityEvents) // → 0x0378 (ECDSA P-384 signed)
 */
export function messageSuiteId(base64Message: string): number | undefined {
  const header = Buffer.from(base64Message.slice(0, 8), 'base64');
  if (header[0] === 0x01 && header[1] === 0x80 && header.length >= 4) return header.readUInt16BE(2);
  if (header[0] === 0x02 && header.length >= 3) return header.readUInt16BE(1);
  return undefined;
}

/** `ALG_…` name of a suite id, or its hex when unknown to the SDK. */
export function suiteName(suiteId: number): string {
  return AlgorithmSuiteIdentifier[suiteId] ?? `0x${suiteId.toString(16).padStart(4, '0')}`;
}

/**
 * Opens one DAS record: the data key from `keys`, the Encryption SDK message with the
 * raw AES keyring (in memory: {@link decryptMessage}), gunzip, JSON. Throws, with the
 * step that failed, on anything wrong.
 */
export async function decryptDasRecord(
  record: DasRecord,
  keys: DataKeySource,
): Promise<DasActivityPayload> {
  const dataKey = await step('data key', () => keys.dataKey(Buffer.from(record.key, 'base64')));
  const plaintext = await step('decrypt', () =>
    decryptMessage(managerFor(dataKey), Buffer.from(record.databaseActivityEvents, 'base64')),
  );
  // Synchronous: one record's payload is at most a few MB, and zlib's async form costs
  // a thread-pool round trip per record for nothing (the Lambda works one record at a time).
  const json = await step('gunzip', () => Promise.resolve(gunzipSync(plaintext)));
  const value: unknown = await step('parse', () =>
    Promise.resolve(JSON.parse(json.toString('utf8'))),
  );
  const parsed = dasActivityPayloadSchema.safeParse(value);
  if (!parsed.success)
    throw new Error(`parse: not a DAS activity payload: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

async function step<T>(name: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const message = `${name}: ${(error as Error).message}`;
    // Keep the class: a KMS error that may pass means retry, not quarantine.
    throw error instanceof TransientDataKeyError
      ? new TransientDataKeyError(message, { cause: error })
      : new Error(message);
  }
}
