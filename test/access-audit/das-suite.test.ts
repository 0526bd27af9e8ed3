import { ECDH } from 'node:crypto';
import { AlgorithmSuiteIdentifier } from '@aws-crypto/client-node';
import { describe, expect, it } from 'vitest';
import { decodeDasRecords } from '../../src/access-audit/das/decode';
import { staticDataKeySource } from '../../src/access-audit/das/keys';
import { activityEvent, dasRecord, streamKeys } from './support/das';
import { testDasProcessor } from './support/das-processor';

// Which Encryption SDK suite RDS writes DAS payloads with is not documented (AWS's own
// example decrypts with FORBID_ENCRYPT_ALLOW_DECRYPT, so a non-committing suite, signed or
// not). The suite costs most of the decrypt time, so the function reports what it sees.
describe('DAS message suite', () => {
  const keys = streamKeys();

  it('reads the algorithm suite id from each message header', async () => {
    const signed = await dasRecord(keys, [activityEvent()]);
    const unsigned = await dasRecord(keys, [activityEvent()], {
      suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256,
    });
    const result = await decodeDasRecords(
      [signed, unsigned, signed],
      staticDataKeySource(keys.dataKey),
    );
    expect(result.suiteIds).toEqual([0x0378, 0x0178]);
  });

  it('logs each suite the first time the function sees it', async () => {
    const { process, infos } = testDasProcessor(keys);
    const event = {
      Records: [await dasRecord(keys, [activityEvent({ dbUserName: 'app' })])].map((text) => ({
        kinesis: { data: Buffer.from(text).toString('base64'), sequenceNumber: '1' },
      })),
    };
    await process(event);
    await process(event);
    expect(infos.filter(([message]) => message === 'DAS message suite')).toEqual([
      [
        'DAS message suite',
        { suiteId: '0x0378', suite: 'ALG_AES256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384' },
      ],
    ]);
  });
});

// The signed suite's public key travels compressed in the message's encryption context;
// the decoder reads it natively (the SDK's own reader is pure JavaScript and cost a third
// of the decrypt time). Every check must stay: these records must still be refused.
describe('DAS signed messages', () => {
  const keys = streamKeys();
  const source = () => staticDataKeySource(keys.dataKey);

  /** The record with its Encryption SDK message changed by `edit`. */
  function tampered(text: string, edit: (message: Buffer) => Buffer): string {
    const record = JSON.parse(text) as { databaseActivityEvents: string };
    const message = edit(Buffer.from(record.databaseActivityEvents, 'base64'));
    return JSON.stringify({ ...record, databaseActivityEvents: message.toString('base64') });
  }

  it('decodes signed messages whatever the parity of their public key', async () => {
    // 24 fresh signing keys: both compressed-point prefixes (02, 03) are all but certain.
    const texts = await Promise.all(
      Array.from({ length: 24 }, (_, i) => dasRecord(keys, [activityEvent({ statementId: i })])),
    );
    const result = await decodeDasRecords(texts, source());
    expect(result.failures).toEqual([]);
    expect(result.events.map(({ event }) => event.statementId)).toEqual(
      Array.from({ length: 24 }, (_, i) => i),
    );
  });

  it('refuses a signed message whose signature does not verify', async () => {
    const text = await dasRecord(keys, [activityEvent()]);
    const flipped = tampered(text, (message) => {
      const copy = Buffer.from(message);
      copy[copy.length - 1]! ^= 0x01;
      return copy;
    });
    const result = await decodeDasRecords([flipped], source());
    expect(result.events).toEqual([]);
    expect(result.failures).toEqual([{ record: 0, error: expect.stringMatching(/^decrypt: /) }]);
  });

  it('refuses a signed message without its signature', async () => {
    const text = await dasRecord(keys, [activityEvent()]);
    // The footer is a 2-byte length and a DER signature of at most 104 bytes.
    const cut = tampered(text, (message) => message.subarray(0, message.length - 106));
    const result = await decodeDasRecords([cut], source());
    expect(result.events).toEqual([]);
    expect(result.failures).toEqual([{ record: 0, error: expect.stringMatching(/^decrypt: /) }]);
  });

  it('refuses a signed message whose public key is not a point of the curve', async () => {
    const text = await dasRecord(keys, [activityEvent()]);
    // The key is the base64 text of a compressed P-384 point in the header's context:
    // replace its x coordinate by one with no point on the curve, keeping the length.
    const bad = tampered(text, (message) => {
      const marker = Buffer.from('aws-crypto-public-key');
      const at = message.indexOf(marker);
      expect(at).toBeGreaterThan(0);
      const length = message.readUInt16BE(at + marker.length);
      const valueAt = at + marker.length + 2;
      const point = Buffer.from(message.subarray(valueAt, valueAt + length).toString(), 'base64');
      expect(point).toHaveLength(49);
      for (let x = 1; ; x++) {
        const candidate = Buffer.alloc(49);
        candidate[0] = 0x02;
        candidate.writeUInt32BE(x, 45);
        if (!isCurvePoint(candidate)) {
          const copy = Buffer.from(message);
          copy.write(candidate.toString('base64'), valueAt);
          return copy;
        }
      }
    });
    const result = await decodeDasRecords([bad], source());
    expect(result.events).toEqual([]);
    expect(result.failures).toEqual([{ record: 0, error: expect.stringMatching(/^decrypt: /) }]);
  });
});

function isCurvePoint(compressed: Buffer): boolean {
  try {
    ECDH.convertKey(compressed, 'secp384r1', undefined, undefined, 'uncompressed');
    return true;
  } catch {
    return false;
  }
}
