import { Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { acknowledge } from '../nag';

/** The names DMS looks for; fixed by DMS, so at most one of each per account. */
export const DMS_VPC_ROLE_NAME = 'dms-vpc-role';
export const DMS_CLOUDWATCH_LOGS_ROLE_NAME = 'dms-cloudwatch-logs-role';

/**
 * The two account-level roles DMS needs before any replication subnet group or task
 * logging works: `dms-vpc-role` (AmazonDMSVPCManagementRole) and
 * `dms-cloudwatch-logs-role` (AmazonDMSCloudWatchLogsRole). A separate stack because the
 * names are fixed: deploy it once per account, and not at all where the roles exist
 * (for example created by the console or another DMS project).
 */
export class DmsAccountRolesStack extends Stack {
  readonly vpcRole: iam.Role;
  readonly cloudWatchLogsRole: iam.Role;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, {
      description: 'audit-trail: account-level IAM roles required by AWS DMS (once per account)',
      ...props,
    });
    const dms = new iam.ServicePrincipal('dms.amazonaws.com');
    this.vpcRole = new iam.Role(this, 'DmsVpcRole', {
      roleName: DMS_VPC_ROLE_NAME,
      assumedBy: dms,
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonDMSVPCManagementRole'),
      ],
    });
    this.cloudWatchLogsRole = new iam.Role(this, 'DmsCloudWatchLogsRole', {
      roleName: DMS_CLOUDWATCH_LOGS_ROLE_NAME,
      assumedBy: dms,
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonDMSCloudWatchLogsRole'),
      ],
    });
    acknowledge(
      this,
      'DMS looks these roles up by name and requires exactly these AWS managed policies',
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonDMSVPCManagementRole]',
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonDMSCloudWatchLogsRole]',
    );
  }
}
