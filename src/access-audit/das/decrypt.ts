import { KeyObject, webcrypto } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import {
  AlgorithmSuiteIdentifier,
  NodeDecryptionMaterial,
  NodeDefaultCryptographicMaterialsManager,
  needs,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  type EncryptionContext,
  type NodeDecryptionRequest,
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

/** Each curve the Encryption SDK signs with: its WebCrypto name and its compressed point's length. */
const SIGNATURE_CURVES: Record<string, { namedCurve: string; pointBytes: number }> = {
  secp384r1: { namedCurve: 'P-384', pointBytes: 49 },
  prime256v1: { namedCurve: 'P-256', pointBytes: 33 },
};

/**
 * A signed message's public key (the compressed point in its encryption context) as an
 * OpenSSL key object. Imported as a raw point (WebCrypto `importKey('raw')`), which
 * OpenSSL reads straight into an EC key, decompressing the point and refusing one that
 * is not on the curve; a DER SubjectPublicKeyInfo of the same point (the way before)
 * went through OpenSSL 3's decoder framework, about 1.7 times the CPU per key
 * (BENCHMARKS 6). The SDK's own path (pure-JavaScript big numbers and ASN.1, then a PEM
 * OpenSSL parses again at every verification) cost more still.
 */
async function signerPublicKey(
  curve: string,
  encryptionContext: EncryptionContext,
): Promise<KeyObject> {
  const encoded = encryptionContext?.[SIGNER_KEY_CONTEXT];
  if (!encoded) throw new Error('Context does not contain required public key.');
  const compressed = Buffer.from(encoded, 'base64');
  const known = SIGNATURE_CURVES[curve];
  if (known === undefined) throw new Error(`Unsupported signature curve ${curve}.`);
  // A compressed point: 02 or 03, then x (as long as the curve's field).
  if (compressed.length !== known.pointBytes || (compressed[0] !== 2 && compressed[0] !== 3))
    throw new Error('Compressed point length is not correct.');
  const key = await webcrypto.subtle.importKey(
    'raw',
    compressed,
    { name: 'ECDSA', namedCurve: known.namedCurve },
    false,
    ['verify'],
  );
  return KeyObject.from(key);
}

/**
 * The SDK's default materials manager, except that a signed message's public key becomes
 * an OpenSSL key object directly ({@link signerPublicKey}), instead of through the SDK's
 * pure-JavaScript big-number and ASN.1 code and a PEM text OpenSSL parses again at every
 * verification: together a fifth of the CPU of a signed DAS record (BENCHMARKS 6).
 * Nothing is skipped: OpenSSL decompresses the point and refuses one that is not on the
 * suite's curve, the signature is still verified over the whole message by the SDK's
 * verifier, and unsigned suites take the SDK's own path unchanged (which refuses a
 * public key in their context).
 */
class DasMaterialsManager extends NodeDefaultCryptographicMaterialsManager {
  // The key import is asynchronous (WebCrypto), and the SDK's `_initializeDecryptionMaterial`
  // is not: so the signed path is the SDK's `decryptMaterials` with the key imported first.
  override async decryptMaterials(request: NodeDecryptionRequest): Promise<NodeDecryptionMaterial> {
    const { suite, encryptionContext, encryptedDataKeys } = request;
    const curve = suite.signatureCurve;
    if (!curve) return super.decryptMaterials(request);
    const publicKey = await signerPublicKey(curve, encryptionContext);
    // The SDK's Node verifier hands `publicKey` to `crypto.Verify#verify`, which takes a
    // KeyObject; its type names only the WebCrypto key of the browser build.
    const material = await this.keyring.onDecrypt(
      new NodeDecryptionMaterial(suite, encryptionContext).setVerificationKey(
        new VerificationKey(publicKey as unknown as AwsEsdkJsCryptoKey, suite),
      ),
      encryptedDataKeys.slice(),
    );
    // The SDK's postcondition: the keyring left a valid data key for the suite.
    needs(material.getUnencryptedDataKey(), 'Unencrypted data key is invalid.');
    return material;
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
