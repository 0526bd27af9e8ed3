import { App, type AppProps, type Environment } from 'aws-cdk-lib';
import type { AuditTrailConfig } from '../src/config';
import { resolveDeployment } from '../src/config/deployment';
import { AuditTrailStack } from './audit-trail-stack';
import { DmsAccountRolesStack } from './constructs/dms-account-roles';
import { applyNag } from './nag';

/** What {@link buildApp} created. */
export interface AuditTrailApp {
  readonly app: App;
  readonly stack: AuditTrailStack;
  /** Present when `deployment.dms.createAccountRoles` is true. */
  readonly rolesStack?: DmsAccountRolesStack;
}

/**
 * Builds the CDK app for a config: the pipeline stack, the optional account-level DMS
 * roles stack, and cdk-nag's AwsSolutions checks over everything. Pass an existing
 * `App` (the CLI entry point reads `-c config=` from it first) or props for a new one.
 *
 * Further features add their constructs to `stack` here (for example, when
 * `config.accessAudit` is present, the access-audit construct subscribed to
 * `stack.source.postgresLogGroupName`, with its pgAudit parameters passed in as
 * `extraSourceClusterParameters`).
 */
export function buildApp(config: AuditTrailConfig, app: App | AppProps = {}): AuditTrailApp {
  app = app instanceof App ? app : new App(app);
  const deployment = resolveDeployment(config.deployment);
  // Without account/region the stacks are environment-agnostic: synth needs no credentials.
  const env: Environment | undefined =
    deployment.account !== undefined || deployment.region !== undefined
      ? { account: deployment.account, region: deployment.region }
      : undefined;
  const rolesStack = deployment.dms.createAccountRoles
    ? new DmsAccountRolesStack(app, `${deployment.stackName}-DmsRoles`, { env })
    : undefined;
  const stack = new AuditTrailStack(app, deployment.stackName, { config, env });
  if (rolesStack) stack.addDependency(rolesStack, 'DMS needs dms-vpc-role before a subnet group');
  applyNag(app);
  return { app, stack, ...(rolesStack && { rolesStack }) };
}
