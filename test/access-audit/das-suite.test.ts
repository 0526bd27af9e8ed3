import { AlgorithmSuiteIdentifier } from '@aws-crypto/client-node';
import { KMSClient } from '@aws-sdk/client-kms';
import { SNSClient } from '@aws-sdk/client-sns';
import { describe, expect, it, onTestFinished } from 'vitest';
import { decodeDasRecords } from '../../src/access-audit/das/decode';
import { kmsDataKeySource, staticDataKeySource } from '../../src/access-audit/das/keys';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { createDasProcessor } from '../../src/lambda/das-decrypt/processor';
import { activityEvent, CLUSTER_RESOURCE_ID, dasRecord, mockKms, streamKeys } from './support/das';

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
    const kms = mockKms(keys);
    onTestFinished(() => kms.restore());
    const infos: [string, Record<string, unknown> | undefined][] = [];
    const process = createDasProcessor({
      settings: {
        topicArn: 'arn:aws:sns:eu-west-1:111122223333:t',
        config: parseAccessAuditConfig({}),
      },
      sns: new SNSClient({ region: 'eu-west-1' }),
      keys: kmsDataKeySource(new KMSClient({ region: 'eu-west-1' }), CLUSTER_RESOURCE_ID),
      logger: {
        info: (message, extra) => infos.push([message, extra]),
        warn: () => {},
        error: () => {},
      },
      metrics: { addMetric: () => {} },
    });
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
