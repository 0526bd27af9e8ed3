import { createPublicKey } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import {
  AlgorithmSuiteIdentifier,
  NodeDecryptionMaterial,
  NodeDefaultCryptographicMaterialsManager,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  type EncryptionContext,
  type NodeAlgorithmSuite,
  type NodeMaterialsManager,
} from '@aws-crypto/client-node';
import { VerificationKey, type AwsEsdkJsCryptoKey } from '@aws-crypto/material-management';
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
 * DER SubjectPublicKeyInfo (RFC 5480) up to the public key, for a compressed point on each
 * curve the Encryption SDK signs with: SEQUENCE { SEQUENCE { id-ecPublicKey, curve }, BIT
 * STRING { 0 unused bits, point } }. The message's compressed point completes it.
 */
const COMPRESSED_POINT_SPKI: Record<string, { prefix: Buffer; pointBytes: number }> = {
  // id-ecPublicKey 1.2.840.10045.2.1, secp384r1 1.3.132.0.34, 49-byte point.
  secp384r1: {
    prefix: Buffer.from('3046301006072a8648ce3d020106052b81040022033200', 'hex'),
    pointBytes: 49,
  },
  // id-ecPublicKey 1.2.840.10045.2.1, prime256v1 1.2.840.10045.3.1.7, 33-byte point.
  prime256v1: {
    prefix: Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'),
    pointBytes: 33,
  },
};

/**
 * The SDK's default materials manager, except that a signed message's public key (a
 * compressed point in the message's encryption context) becomes an OpenSSL key object
 * directly, instead of through the SDK's pure-JavaScript big-number and ASN.1 code and a
 * PEM text OpenSSL parses again at every verification: together a fifth of the CPU of a
 * signed DAS record (BENCHMARKS 6). Nothing is skipped: OpenSSL decompresses the point
 * and refuses one that is not on the suite's curve, the signature is still verified over
 * the whole message by the SDK's verifier, and unsigned suites take the SDK's own path
 * unchanged (which refuses a public key in their context).
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
    const spki = COMPRESSED_POINT_SPKI[curve];
    if (spki === undefined) throw new Error(`Unsupported signature curve ${curve}.`);
    // A compressed point: 02 or 03, then x (as long as the curve's field).
    if (compressed.length !== spki.pointBytes || (compressed[0] !== 2 && compressed[0] !== 3))
      throw new Error('Compressed point length is not correct.');
    const publicKey = createPublicKey({
      key: Buffer.concat([spki.prefix, compressed]),
      format: 'der',
      type: 'spki',
    });
    // The SDK's Node verifier hands `publicKey` to `crypto.Verify#verify`, which takes a
    // KeyObject; its type names only the WebCrypto key of the browser build.
    return new NodeDecryptionMaterial(suite, encryptionContext).setVerificationKey(
      new VerificationKey(publicKey as unknown as AwsEsdkJsCryptoKey, suite),
    );
  }
}

/**
 * The materials manager that opens DAS messages under `dataKey`: the raw AES keyring RDS
 * uses ({@link dasKeyring}), with signed messages' public keys read by OpenSSL. One per
 * data key object, so a cached data key opens every record of its batch with one keyring.
 *
 * @example
 * const plaintext = await decryptMessage(dasMaterialsManager(dataKey), message);
 */
export function dasMaterialsManager(dataKey: Uint8Array): NodeMaterialsManager {
  let manager = managers.get(dataKey);
  if (manager === undefined) {
    manager = new DasMaterialsManager(dasKeyring(dataKey));
    managers.set(dataKey, manager);
  }
  return manager;
}

const managers = new WeakMap<Uint8Array, DasMaterialsManager>();

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
    decryptMessage(
      dasMaterialsManager(dataKey),
      Buffer.from(record.databaseActivityEvents, 'base64'),
    ),
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
