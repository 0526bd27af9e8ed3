/**
 * audit-trail kit: the AWS CDK entry point (`import … from 'audit-trail-kit/cdk'`).
 *
 * `aws-cdk-lib`, `constructs` and `cdk-nag` are peer dependencies: the CDK app that
 * imports this module provides them, so its constructs and the kit's share one
 * `aws-cdk-lib`. Bundling the kit's Lambda functions needs `esbuild` in that app too.
 *
 * @example
 * ```ts
 * import { loadConfig } from 'audit-trail-kit';
 * import { buildApp } from 'audit-trail-kit/cdk';
 *
 * const config = await loadConfig('audit-trail.config.json');
 * buildApp(config).app.synth();
 * ```
 */
export { buildApp } from './build-app';
export type { AuditTrailApp } from './build-app';
export { AuditTrailStack, taskFingerprint } from './audit-trail-stack';
export type { AuditTrailStackProps } from './audit-trail-stack';
export { AccessAuditMonitor } from './access-audit/access-audit-monitor';
export type { AccessAuditMonitorProps } from './access-audit/access-audit-monitor';
export { AccessAuditCanary } from './access-audit/access-audit-canary';
export type { AccessAuditCanaryProps } from './access-audit/access-audit-canary';
export { DatabaseActivityStream } from './activity-stream/activity-stream';
export type { DatabaseActivityStreamProps } from './activity-stream/activity-stream';
export { ActivityStreamKey } from './activity-stream/stream-key';
export type { ActivityStreamKeyProps } from './activity-stream/stream-key';
export { ActivityStreamStarter } from './activity-stream/stream-starter';
export type { ActivityStreamStarterProps } from './activity-stream/stream-starter';
export { ActivityStreamDecryptFunction } from './activity-stream/decrypt-function';
// The stream metrics' names and dimension, for alarms of one's own.
export { DAS_CLUSTER_DIMENSION, DAS_STREAM_METRICS } from '../src/lambda/access-alert/metrics';
export type { ActivityStreamDecryptFunctionProps } from './activity-stream/decrypt-function';
export { ActivityArchive } from './activity-stream/archive';
export type { ActivityArchiveProps } from './activity-stream/archive';
export { AlertTopic } from './constructs/alert-topic';
export type { AlertTopicProps } from './constructs/alert-topic';
export { pgauditClusterParameters } from './access-audit/parameters';
export type { PgauditParameterOptions } from './access-audit/parameters';
export { AuditorAccess, AUDITOR_DATA_API_ACTIONS } from './constructs/auditor-access';
export type { AuditorAccessProps } from './constructs/auditor-access';
export { ChainAnchor } from './constructs/chain-anchor';
export type { ChainAnchorProps } from './constructs/chain-anchor';
export { DmsAccountRolesStack } from './constructs/dms-account-roles';
export { applyNag } from './nag';
