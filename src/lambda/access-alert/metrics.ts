/**
 * Metric names the alert Lambda publishes (embedded metric format). The CDK
 * construct builds its alarms and dashboard from the same constants.
 */
export const ACCESS_AUDIT_METRICS = {
  /** pgAudit events parsed. */
  auditEvents: 'AuditEvents',
  /** Alerts raised by any rule: what the human-activity alarm watches. */
  alerts: 'Alerts',
  /** Alerts on human DML (WRITE class). */
  humanDml: 'HumanDml',
  /** Alerts on privilege changes (ROLE class). */
  privilegeChanges: 'PrivilegeChanges',
  /** Alerts on human reads (READ class). */
  humanReads: 'HumanReads',
  /** Alerts on DDL. */
  ddl: 'DdlChanges',
  /** Events dropped as client-tool noise. */
  noise: 'NoiseDropped',
  /** Events excluded by configuration (service accounts, databases, schemas, ignore rules). */
  excluded: 'Excluded',
  /** Parallel workers' records folded into their leader's (also counted in `Excluded`). */
  parallelWorkerRecords: 'ParallelWorkerRecords',
  /** pgAudit records or payloads that could not be read; each is skipped. */
  parseErrors: 'ParseErrors',
  /** Canary records seen: the liveness alarm fires when this stays below 1 (missing counts as 0). */
  canarySeen: 'CanarySeen',
  /** Failures of the monitor itself (SNS/SQS/Firehose delivery, unexpected errors). */
  monitorErrors: 'MonitorErrors',
  /** Database Activity Streams: events handed to the archive's Firehose stream. */
  archivedEvents: 'ArchivedEvents',
} as const;

/**
 * Metric names of one cluster's Database Activity Stream, published with the dimension
 * {@link DAS_CLUSTER_DIMENSION} besides `service`: they say the stream itself is alive,
 * which the monitor-wide metrics above cannot (they sum every source).
 */
export const DAS_STREAM_METRICS = {
  /**
   * Records the decrypt function read and could open with the cluster's data key (KMS
   * under the cluster's encryption context): proof the cluster's stream is speaking.
   * The quiet-stream alarm fires when this stays below 1 (missing counts as breaching).
   */
  recordsRead: 'DasRecordsRead',
  /** Heartbeat events in those records: what an idle cluster's stream carries. */
  heartbeats: 'DasHeartbeats',
} as const;

/** The dimension naming the cluster of {@link DAS_STREAM_METRICS}: its `DbClusterResourceId`. */
export const DAS_CLUSTER_DIMENSION = 'ClusterResourceId';

/** The default CloudWatch namespace of the metrics. */
export const DEFAULT_METRICS_NAMESPACE = 'AuditTrail/AccessAudit';

/** The default Powertools service name: it becomes the `service` metric dimension. */
export const DEFAULT_SERVICE_NAME = 'access-audit-monitor';
