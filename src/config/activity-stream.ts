import { z } from 'zod';

/**
 * `accessAudit.activityStream.archive`: where decrypted activity is kept for the long
 * term (Firehose → S3, queried with Athena).
 */
export const activityArchiveSchema = z
  .object({
    /** Archive the decrypted events to S3 through Firehose. @default true */
    enabled: z.boolean().default(true),
    /** Days an archived object is kept, then expired (and, with `objectLock`, locked for). @default 2555 (7 years) */
    retentionDays: z.number().int().min(1).max(36_500).default(2555),
    /** Days after which archived objects move to S3 Glacier Flexible Retrieval. @default 90 */
    glacierAfterDays: z.number().int().min(1).default(90),
    /**
     * `json`: newline-delimited JSON as the decoder prints it; `parquet`: Firehose converts
     * every record to Parquet through the archive's Glue table (cheaper Athena scans).
     * @default "json"
     */
    format: z.enum(['json', 'parquet']).default('json'),
    /**
     * S3 Object Lock on the archive bucket, every object retained `retentionDays`:
     * `governance` (users with `s3:BypassGovernanceRetention` may delete early) or
     * `compliance` (nobody can, the account root included). Only on a new bucket.
     * @default "off"
     */
    objectLock: z.enum(['off', 'governance', 'compliance']).default('off'),
  })
  .strict()
  .superRefine((archive, ctx) => {
    if (archive.glacierAfterDays >= archive.retentionDays) {
      ctx.addIssue({
        code: 'custom',
        path: ['glacierAfterDays'],
        message: `must be less than retentionDays (${archive.retentionDays}): objects expire before they would move to Glacier`,
      });
    }
  });

/**
 * `accessAudit.activityStream`: Aurora PostgreSQL's Database Activity Streams, the access
 * audit the database's own administrators cannot switch off. Opt-in: starting a stream
 * restarts the cluster's instances, and the stream needs outbound access to KMS.
 */
export const activityStreamSchema = z
  .object({
    /** Start the activity stream on the source cluster and decrypt, alert on and archive it. @default false */
    enabled: z.boolean().default(false),
    /**
     * `async`: the database never waits for the stream (events may be lost if it falls
     * behind, and RDS says so in the stream); `sync`: sessions wait until the event is
     * accepted (no loss, slower statements).
     * @default "async"
     */
    mode: z.enum(['async', 'sync']).default('async'),
    /** Kinesis records per invocation of the decrypt Lambda (1–10000). @default 100 */
    batchSize: z.number().int().min(1).max(10_000).default(100),
    /** Times a failing record is retried before it goes to the failure queue. @default 3 */
    retryAttempts: z.number().int().min(0).max(10_000).default(3),
    /**
     * Batches of one shard the decrypt Lambda reads at once (1–10, the event source
     * mapping's `ParallelizationFactor`): the lever when one function instance cannot keep
     * up with a shard (the decrypt costs CPU per record, see BENCHMARKS 6). Lambda still
     * processes the records of one partition key (one instance) in order.
     * @default 1
     */
    parallelizationFactor: z.number().int().min(1).max(10).default(1),
    /**
     * Minutes without one record of the cluster's stream (activity or heartbeat) after
     * which the quiet-stream alarm fires: a stopped stream, a stopped cluster or a decrypt
     * function that reads nothing. AWS documents that an idle stream carries `heartbeat`
     * events but not how often; keep this well above the gap between heartbeats you see
     * (the `DasHeartbeats` metric). 5 to 1440 (CloudWatch evaluates at most a day of
     * one-minute periods).
     * @default 15
     */
    quietMinutes: z.number().int().min(5).max(1440).default(15),
    /**
     * The long-term archive: every decrypted event (heartbeats and `rdsadmin` dropped) to
     * S3 through Firehose, queryable with Athena. Without this section nothing is archived.
     * @default undefined (no archive)
     */
    archive: activityArchiveSchema.optional(),
  })
  .strict();

/** A validated `accessAudit.activityStream` section. */
export type ActivityStreamConfig = z.infer<typeof activityStreamSchema>;

/** A validated `accessAudit.activityStream.archive` section. */
export type ActivityArchiveConfig = z.infer<typeof activityArchiveSchema>;
