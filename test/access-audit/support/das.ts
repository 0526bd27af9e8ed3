import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
} from '@aws-crypto/client-node';
import { DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { isDeepStrictEqual } from 'node:util';
import type { KinesisEvent } from '../../../src/lambda/das-decrypt/processor';

// No vitest import here: the DAS bench case builds its records with this module.

// Non-committing suites, as RDS writes them: the default here is 0x0378 (signed, ECDSA
// P-384), the suite a real stream's messages carried (README, "Throughput").
const { encrypt } = buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT);

export const CLUSTER_RESOURCE_ID = 'cluster-4PWJ3DEXAMPLE';
export const TOPIC_ARN = 'arn:aws:sns:eu-west-1:111122223333:access-alerts';
export const STREAM_ARN = `arn:aws:kinesis:eu-west-1:111122223333:stream/aws-rds-das-${CLUSTER_RESOURCE_ID}`;

/** One stream's keys: the plaintext data key and the "KMS ciphertext" standing for it. */
export interface StreamKeys {
  dataKey: Buffer;
  encryptedKey: Buffer;
}

export function streamKeys(): StreamKeys {
  return { dataKey: randomBytes(32), encryptedKey: randomBytes(184) };
}

/** A DAS activity event as Aurora PostgreSQL writes it (fields from the AWS docs' example). */
export function activityEvent(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'record',
    clientApplication: 'psql',
    pid: 18251,
    dbUserName: 'alice',
    databaseName: 'appdb',
    remoteHost: '10.0.3.195',
    remotePort: '34534',
    command: 'SELECT',
    commandText: 'SELECT * FROM public.items',
    paramList: [],
    objectType: 'TABLE',
    objectName: 'public.items',
    statementId: 7,
    substatementId: 1,
    exitCode: 0,
    sessionId: '5ce5f7f0.474b',
    rowCount: 3,
    serverHost: '10.0.3.192',
    serverType: 'PostgreSQL',
    serviceName: 'Amazon Aurora PostgreSQL-Compatible edition',
    serverVersion: '15.4',
    startTime: '2026-11-30 22:39:49.940668+00',
    errorMessage: null,
    class: 'READ',
    dbProtocol: 'Postgres 3.0',
    netProtocol: 'TCP',
    ...fields,
  };
}

/**
 * Every kind of value JSON can carry in an event's field, and then some (NaN): what a
 * field's check is tried with, beside `undefined` for the field left out.
 */
export const FIELD_VALUES: readonly unknown[] = [
  undefined,
  null,
  '',
  'x',
  '42',
  0,
  7,
  -1.5,
  Number.NaN,
  true,
  false,
  [],
  ['a', 1, null, { b: 2 }],
  {},
  { nested: 'object' },
];

/**
 * Values beyond {@link FIELD_VALUES}: numbers at JSON's edges (-0, past 2^53, the
 * infinities) and values no JSON text holds (a bigint, a Date).
 */
export const EDGE_FIELD_VALUES: readonly unknown[] = [
  -0,
  2 ** 60,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  10n,
  new Date(0),
];

/** A copy of `event` with `field` set to `value`, or left out when `value` is undefined. */
export function withField(
  event: Record<string, unknown>,
  field: string,
  value: unknown,
): Record<string, unknown> {
  const copy = { ...event, [field]: value };
  if (value === undefined) delete copy[field];
  return copy;
}

export const HEARTBEAT = { type: 'heartbeat', logTime: '2026-11-30 22:39:50.000000+00' };

/**
 * A real DAS Kinesis record: the payload gzipped and encrypted with the Encryption SDK
 * under the raw AES keyring RDS uses (namespace BC, name DataKey, AES-256-GCM).
 */
export async function dasRecord(
  keys: StreamKeys,
  events: unknown[],
  options: { suiteId?: AlgorithmSuiteIdentifier } = {},
): Promise<string> {
  const payload = {
    type: 'DatabaseActivityMonitoringRecord',
    clusterId: CLUSTER_RESOURCE_ID,
    instanceId: 'db-EXAMPLE',
    databaseActivityEventList: events,
  };
  return dasRecordOf(keys, gzipSync(JSON.stringify(payload)), options);
}

/**
 * A DAS Kinesis record whose encrypted payload is `plaintext` as given (RDS gzips JSON;
 * tests pass what RDS never should), under the raw AES keyring RDS uses.
 */
export async function dasRecordOf(
  keys: StreamKeys,
  plaintext: Buffer,
  options: { suiteId?: AlgorithmSuiteIdentifier } = {},
): Promise<string> {
  const keyring = new RawAesKeyringNode({
    keyNamespace: 'BC',
    keyName: 'DataKey',
    unencryptedMasterKey: new Uint8Array(keys.dataKey), // zeroed by the keyring
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
  const { result } = await encrypt(keyring, plaintext, options);
  return JSON.stringify({
    type: 'DatabaseActivityMonitoringRecords',
    version: '1.1',
    databaseActivityEvents: result.toString('base64'),
    key: keys.encryptedKey.toString('base64'),
  });
}

/**
 * A KMS client mocked at the SDK boundary: Decrypt returns the data key only for its
 * ciphertext under the encryption context `aws:rds:dbc-id` = the cluster's resource id,
 * and fails as KMS does otherwise.
 */
export function mockKms(keys: StreamKeys, clusterResourceId = CLUSTER_RESOURCE_ID) {
  const kms = mockClient(KMSClient);
  kms.on(DecryptCommand).callsFake((input: DecryptCommand['input']) => {
    const blob = Buffer.from(input.CiphertextBlob ?? []);
    const right =
      blob.equals(keys.encryptedKey) &&
      isDeepStrictEqual(input.EncryptionContext, { 'aws:rds:dbc-id': clusterResourceId });
    if (!right) {
      const error = new Error(
        'The ciphertext refers to a customer master key that does not exist, or the context does not match',
      );
      error.name = 'InvalidCiphertextException';
      throw error;
    }
    return {
      Plaintext: new Uint8Array(keys.dataKey),
      KeyId: 'arn:aws:kms:eu-west-1:111122223333:key/das',
    };
  });
  return kms;
}

/** A `GRANT` as a DAS activity event: a `ROLE`-class statement, which alerts. */
export const grant = (fields: Record<string, unknown> = {}) =>
  activityEvent({
    class: 'ROLE',
    command: 'GRANT',
    commandText: 'GRANT SELECT ON public.items TO mallory',
    objectType: '',
    objectName: '',
    ...fields,
  });

/** A Lambda Kinesis event from the cluster's stream carrying `texts` as its records, in order. */
export function kinesisEvent(texts: readonly string[]): KinesisEvent {
  return {
    Records: texts.map((text, index) => {
      const sequenceNumber = `4959000000000000000000000000000000000000000000000000${index}`;
      return {
        eventID: `shardId-000000000000:${sequenceNumber}`,
        eventSourceARN: STREAM_ARN,
        kinesis: {
          data: Buffer.from(text).toString('base64'),
          sequenceNumber,
          partitionKey: 'db-EXAMPLE',
        },
      };
    }),
  };
}
