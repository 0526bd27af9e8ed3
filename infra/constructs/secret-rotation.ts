import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IDependable } from 'constructs';
import { PASSWORD_EXCLUDED_CHARACTERS } from './database-defaults';
import type { PostgresDatabase } from './postgres-database';

/** One secret to rotate and the database whose login it holds. */
export interface RotatedSecret {
  /** Construct id of its rotation schedule. */
  readonly id: string;
  readonly secret: secretsmanager.ISecret;
  readonly database: PostgresDatabase;
}

/** Props of {@link SecretRotation}. */
export interface SecretRotationProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly secrets: readonly RotatedSecret[];
  /** Days between rotations. @default 30 */
  readonly days?: number;
  /**
   * Rotation starts only after these (the steps that read the secrets at deploy time),
   * so a first rotation never races them.
   * @default []
   */
  readonly after?: readonly IDependable[];
}

/**
 * Rotates database secrets with Secrets Manager's hosted single-user rotation function
 * for PostgreSQL: each login changes its own password (no login needs rights over
 * another), new passwords leave out the characters DMS rejects, and the functions run in
 * the VPC behind one security group that may reach only the databases' ports and
 * Secrets Manager (wired by the stack).
 */
export class SecretRotation extends Construct {
  readonly securityGroup: ec2.SecurityGroup;
  readonly schedules: secretsmanager.RotationSchedule[];

  constructor(scope: Construct, id: string, props: SecretRotationProps) {
    super(scope, id);
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'audit-trail secret rotation functions',
      allowAllOutbound: false,
    });
    const days = props.days ?? 30;
    this.schedules = props.secrets.map(({ id: scheduleId, secret, database }) => {
      database.allowFrom(this.securityGroup, 'audit-trail secret rotation');
      const schedule = new secretsmanager.RotationSchedule(this, scheduleId, {
        secret,
        hostedRotation: secretsmanager.HostedRotation.postgreSqlSingleUser({
          vpc: props.vpc,
          vpcSubnets: props.subnets,
          securityGroups: [this.securityGroup],
          excludeCharacters: PASSWORD_EXCLUDED_CHARACTERS,
        }),
        automaticallyAfter: Duration.days(days),
      });
      for (const dependency of props.after ?? []) schedule.node.addDependency(dependency);
      return schedule;
    });
  }
}
