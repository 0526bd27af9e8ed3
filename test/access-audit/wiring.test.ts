import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AccessAuditMonitor } from '../../infra/access-audit/access-audit-monitor';
import {
  accessAuditLogRetention,
  pgauditClusterParameters,
} from '../../infra/access-audit/parameters';
import { AuditTrailStack } from '../../infra/audit-trail-stack';
import { applyNag } from '../../infra/nag';
import { parseConfig } from '../../src/config';

/**
 * How the app wires the access audit into the pipeline stack: pgAudit parameters and
 * log retention on the source cluster, the monitor subscribed to its PostgreSQL log.
 */
describe('access audit wired into the pipeline stack', () => {
  const example = JSON.parse(
    readFileSync(path.join(__dirname, '../../examples/aws.config.json'), 'utf8'),
  ) as Record<string, unknown>;
  const config = parseConfig({
    ...example,
    accessAudit: { auditedRoles: ['alice'], serviceAccounts: ['app_svc'] },
  });
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const access = config.accessAudit!;
  const stack = new AuditTrailStack(app, 'Wired', {
    config,
    extraSourceClusterParameters: pgauditClusterParameters(access),
    sourceLogRetention: accessAuditLogRetention(access),
  });
  const monitor = new AccessAuditMonitor(stack, 'AccessAudit', {
    clusterIdentifier: stack.source.clusterIdentifier,
    config: access,
    // The stack sets the new cluster's log retention itself (sourceLogRetention).
    postgresLogRetention: 'unchanged',
  });
  // RDS (through the log-retention resource) creates the log group: subscribe after it.
  monitor.node.addDependency(stack.source);
  applyNag(app);
  const template = Template.fromStack(stack);

  it('preloads pgaudit next to logical replication and keeps the PostgreSQL log a year', () => {
    template.hasResourceProperties('AWS::RDS::DBClusterParameterGroup', {
      Parameters: Match.objectLike({
        'rds.logical_replication': '1',
        shared_preload_libraries: Match.stringLikeRegexp('pgaudit'),
        'pgaudit.role': 'rds_pgaudit',
      }),
    });
    template.hasResourceProperties('Custom::LogRetention', {
      LogGroupName: Match.objectLike({ 'Fn::Join': Match.anyValue() }),
      RetentionInDays: 365,
    });
    // One retention setter for the PostgreSQL log: the stack's, not a second one.
    const postgresRetention = Object.values(template.findResources('Custom::LogRetention')).filter(
      (resource) => JSON.stringify(resource).includes('SourceCluster'),
    );
    expect(postgresRetention).toHaveLength(1);
  });

  it('subscribes the monitor to the source cluster log group after the cluster exists', () => {
    const filters = template.findResources('AWS::Logs::SubscriptionFilter');
    const [filter] = Object.values(filters) as {
      Properties: { LogGroupName: unknown };
      DependsOn?: string[];
    }[];
    expect(JSON.stringify(filter!.Properties.LogGroupName)).toContain('/postgresql');
    expect(filter!.DependsOn?.some((id) => id.startsWith('SourceCluster'))).toBe(true);
  });
});
