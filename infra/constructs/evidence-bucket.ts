import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { acknowledge } from '../nag';

/** Object Lock for an evidence bucket: who may shorten it, and for how long objects are held. */
export interface EvidenceObjectLock {
  /** COMPLIANCE: nobody, not even the account root, can delete early; GOVERNANCE: holders of s3:BypassGovernanceRetention can. */
  readonly mode: 'COMPLIANCE' | 'GOVERNANCE';
  readonly retentionDays: number;
}

/** Where an evidence bucket's server access logs go. */
export interface EvidenceAccessLogs {
  readonly bucket: s3.IBucket;
  /** Key prefix in the access-log bucket, e.g. `anchors-bucket/`. */
  readonly prefix: string;
}

/**
 * The properties every bucket holding evidence shares (chain anchors, the activity-stream
 * archive and its query results): encrypted with the given customer-managed key (one data
 * key per bucket and period instead of one KMS call per object), TLS 1.2 only, no public
 * access, no ACLs, versioned, access-logged, retained when the stack is deleted, and with
 * Object Lock when asked. Lifecycle rules stay with the caller: they differ per bucket.
 */
export function evidenceBucketProps(
  key: kms.IKey,
  accessLogs: EvidenceAccessLogs,
  objectLock?: EvidenceObjectLock,
): s3.BucketProps {
  return {
    ...(objectLock ? objectLockProps(objectLock) : {}),
    versioned: true,
    encryption: s3.BucketEncryption.KMS,
    encryptionKey: key,
    bucketKeyEnabled: true,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    serverAccessLogsBucket: accessLogs.bucket,
    serverAccessLogsPrefix: accessLogs.prefix,
    removalPolicy: RemovalPolicy.RETAIN,
  };
}

function objectLockProps(lock: EvidenceObjectLock): s3.BucketProps {
  const retention = Duration.days(lock.retentionDays);
  return {
    objectLockEnabled: true,
    objectLockDefaultRetention:
      lock.mode === 'COMPLIANCE'
        ? s3.ObjectLockRetention.compliance(retention)
        : s3.ObjectLockRetention.governance(retention),
  };
}

/**
 * The bucket that receives evidence buckets' server access logs: SSE-S3 (S3 server access
 * logging delivers only to SSE-S3 buckets), TLS only, no public access, versioned,
 * retained. It is not logged itself (that would loop), which cdk-nag's S1 is told.
 * @param logsFor what it holds the access logs of, for the acknowledgement
 */
export function evidenceAccessLogBucket(scope: Construct, id: string, logsFor: string): s3.Bucket {
  const bucket = new s3.Bucket(scope, id, {
    encryption: s3.BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    versioned: true,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  acknowledge(
    bucket,
    `this bucket is the access-log destination of ${logsFor}; logging it into itself would loop`,
    'AwsSolutions-S1',
  );
  return bucket;
}
