import { createECDH, ECDH, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  NodeDefaultCryptographicMaterialsManager,
  NodeEncryptionMaterial,
  type EncryptionContext,
  type NodeAlgorithmSuite,
} from '@aws-crypto/client-node';
import { SignatureKey } from '@aws-crypto/material-management';
import { dasKeyring, dasMaterialsManager } from '../../src/access-audit/das/decrypt';
import { decryptMessage } from '../../src/access-audit/das/message';

// The oracle is the Encryption SDK's own (stream) decrypt, on the same messages.
const { encrypt: encryptNonCommitting } = buildClient(
  CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
);
const { encrypt: encryptCommitting, decrypt: sdkDecrypt } = buildClient(
  CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT,
);

const SUITES = [
  [
    'signed ECDSA P-384 (the SDK default, v1)',
    AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
    encryptNonCommitting,
  ],
  [
    'signed ECDSA P-256 (v1)',
    AlgorithmSuiteIdentifier.ALG_AES128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256,
    encryptNonCommitting,
  ],
  [
    'unsigned HKDF-SHA256 (v1)',
    AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256,
    encryptNonCommitting,
  ],
  [
    'committing, signed (v2 header)',
    AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    encryptCommitting,
  ],
] as const;

/**
 * The materials managers under test: the SDK's default one, and the decrypt function's
 * (which reads a signed message's public key with OpenSSL).
 */
const MANAGERS = [
  [
    'SDK materials manager',
    (key: Buffer) => new NodeDefaultCryptographicMaterialsManager(dasKeyring(key)),
  ],
  ['DAS materials manager', (key: Buffer) => dasMaterialsManager(key)],
] as const;

async function refuses(work: () => Promise<unknown>): Promise<boolean> {
  try {
    await work();
    return false;
  } catch {
    return true;
  }
}

/** A message of several frames (frame length 16), under the raw AES keyring RDS uses. */
async function message(suiteId: AlgorithmSuiteIdentifier, encrypt: typeof encryptNonCommitting) {
  const key = randomBytes(32);
  const plaintext = Buffer.from('{"type":"DatabaseActivityMonitoringRecord","x":[1,2,3]}');
  const { result } = await encrypt(dasKeyring(key), plaintext, { suiteId, frameLength: 16 });
  return { key, plaintext, result };
}

describe('decryptMessage: the Encryption SDK message decrypted in memory', () => {
  for (const [name, suiteId, encrypt] of SUITES)
    for (const [managerName, cmm] of MANAGERS) {
      describe(`${name}, ${managerName}`, () => {
        it('returns what the SDK returns for the same message', async () => {
          const { key, plaintext, result } = await message(suiteId, encrypt);
          const ours = await decryptMessage(cmm(key), result);
          const theirs = await sdkDecrypt(dasKeyring(key), result);
          expect(ours).toEqual(plaintext);
          expect(ours).toEqual(theirs.plaintext);
        });

        it('refuses every one-byte change, as the SDK does', async () => {
          const { key, result } = await message(suiteId, encrypt);
          const accepted: number[] = [];
          const sdkAccepted: number[] = [];
          for (let at = 0; at < result.length; at++) {
            const changed = Buffer.from(result);
            changed[at]! ^= 0x01;
            if (!(await refuses(() => decryptMessage(cmm(key), changed)))) accepted.push(at);
            // The oracle on every eighth position (its stream decrypt is slow).
            if (at % 8 === 0 && !(await refuses(() => sdkDecrypt(dasKeyring(key), changed))))
              sdkAccepted.push(at);
          }
          expect(result.length).toBeGreaterThan(200);
          expect(accepted).toEqual([]);
          expect(sdkAccepted).toEqual([]);
        }, 120_000);

        it('refuses every truncation and any bytes appended', async () => {
          const { key, result } = await message(suiteId, encrypt);
          const accepted: number[] = [];
          for (let length = 0; length < result.length; length++)
            if (!(await refuses(() => decryptMessage(cmm(key), result.subarray(0, length)))))
              accepted.push(length);
          expect(accepted).toEqual([]);
          const longer = Buffer.concat([result, Buffer.from([0])]);
          await expect(decryptMessage(cmm(key), longer)).rejects.toThrow();
        }, 120_000);

        it('refuses the message under another data key', async () => {
          const { result } = await message(suiteId, encrypt);
          await expect(decryptMessage(cmm(randomBytes(32)), result)).rejects.toThrow();
        });
      });
    }

  it('is stricter than the SDK on one point: bytes after an unsigned message', async () => {
    const { key, result } = await message(
      AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256,
      encryptNonCommitting,
    );
    const longer = Buffer.concat([result, Buffer.from('extra')]);
    // The SDK ignores them; the kit refuses a message that is more than a message.
    await expect(sdkDecrypt(dasKeyring(key), longer)).resolves.toBeDefined();
    await expect(decryptMessage(dasMaterialsManager(key), longer)).rejects.toThrow(
      /after the message body/,
    );
  });
});

/**
 * Encrypts and signs as the SDK does, but writes `contextKey(signer's point)` into the
 * message's encryption context as the signer's public key. The context is authenticated
 * under the data key, so the decrypting side gets that key as the signer's.
 */
class SignerKeyReplacingManager extends NodeDefaultCryptographicMaterialsManager {
  constructor(
    key: Buffer,
    private readonly contextKey: (signer: Buffer, curve: string) => Buffer,
  ) {
    super(dasKeyring(key));
  }

  override _initializeEncryptionMaterial(
    suite: NodeAlgorithmSuite,
    encryptionContext: EncryptionContext,
  ): NodeEncryptionMaterial {
    const curve = suite.signatureCurve!;
    const ecdh = createECDH(curve);
    ecdh.generateKeys();
    const signer = ecdh.getPublicKey(null, 'compressed');
    return new NodeEncryptionMaterial(suite, {
      ...encryptionContext,
      'aws-crypto-public-key': this.contextKey(signer, curve).toString('base64'),
    }).setSignatureKey(new SignatureKey(ecdh.getPrivateKey(), new Uint8Array(signer), suite));
  }
}

/** A compressed point of `curve`'s length whose x has no point on the curve. */
function offCurvePoint(signer: Buffer, curve: string): Buffer {
  for (let flip = 0; flip < 256; flip++) {
    const candidate = Buffer.from(signer);
    candidate[candidate.length - 1]! ^= flip;
    try {
      ECDH.convertKey(candidate, curve, undefined, undefined, 'uncompressed');
    } catch {
      return candidate;
    }
  }
  throw new Error('no x off the curve found');
}

describe('decryptMessage: the signer key in the authenticated encryption context', () => {
  const SIGNED = SUITES.filter(([name]) => name.includes('signed') && !name.includes('unsigned'));
  const KEYS: [string, (signer: Buffer, curve: string) => Buffer][] = [
    [
      'another valid key of the curve',
      (_signer, curve) => {
        const other = createECDH(curve);
        other.generateKeys();
        return other.getPublicKey(null, 'compressed');
      },
    ],
    ['a point not on the curve', offCurvePoint],
    [
      'the point uncompressed',
      (signer, curve) =>
        ECDH.convertKey(signer, curve, undefined, undefined, 'uncompressed') as Buffer,
    ],
    [
      'a point of the wrong form (04 with a compressed length)',
      (signer) => Buffer.concat([Buffer.from([4]), signer.subarray(1)]),
    ],
  ];
  for (const [name, suiteId, encrypt] of SIGNED)
    for (const [managerName, cmm] of MANAGERS) {
      it(`${name}, ${managerName}: opens the message signed by the key its context names`, async () => {
        const key = randomBytes(32);
        const plaintext = Buffer.from('{"type":"DatabaseActivityMonitoringRecord"}');
        const manager = new SignerKeyReplacingManager(key, (signer) => signer);
        const { result } = await encrypt(manager, plaintext, { suiteId, frameLength: 16 });
        expect(await decryptMessage(cmm(key), result)).toEqual(plaintext);
      });
      for (const [keyName, contextKey] of KEYS)
        it(`${name}, ${managerName}: refuses a message whose context names ${keyName}`, async () => {
          const key = randomBytes(32);
          const plaintext = Buffer.from('{"type":"DatabaseActivityMonitoringRecord"}');
          const manager = new SignerKeyReplacingManager(key, contextKey);
          const { result } = await encrypt(manager, plaintext, { suiteId, frameLength: 16 });
          expect(await refuses(() => decryptMessage(cmm(key), result))).toBe(true);
          // The oracle: the SDK's own decrypt refuses it too.
          expect(await refuses(() => sdkDecrypt(dasKeyring(key), result))).toBe(true);
        });
    }
});
