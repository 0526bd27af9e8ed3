import { Fn, type CfnResource } from 'aws-cdk-lib';
import * as dms from 'aws-cdk-lib/aws-dms';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { TableMappings, TaskSettings } from '../../mappings';
import { rdsCaBundle } from '../../src/postgres/tls';

/** One DMS endpoint's database. */
export interface DmsDatabase {
  /** DMS engine name: `aurora-postgresql` for a cluster, `postgres` for an RDS instance. @default "aurora-postgresql" */
  readonly engine?: 'aurora-postgresql' | 'postgres';
  /** Secret with `username`, `password`, `host` and `port`. */
  readonly secret: secretsmanager.ISecret;
  readonly databaseName: string;
}

/** Props of {@link DmsReplication}. */
export interface DmsReplicationProps {
  readonly vpc: ec2.IVpc;
  /** Private subnets (at least two AZs) for the replication subnet group. */
  readonly subnetIds: string[];
  /** Lower-case prefix of DMS identifiers (task, instance, endpoints). */
  readonly identifier: string;
  /** `instance`: a replication instance; `serverless`: DMS Serverless. @default "instance" */
  readonly mode?: 'instance' | 'serverless';
  /** Replication instance class. @default "dms.t3.medium" */
  readonly instanceClass?: string;
  /** Replication instance storage in GB. @default 50 */
  readonly allocatedStorageGb?: number;
  /** DMS engine version. @default the DMS default */
  readonly engineVersion?: string;
  /** DMS Serverless capacity units. @default 1 */
  readonly minCapacityUnits?: number;
  /** @default 4 */
  readonly maxCapacityUnits?: number;
  /** Multi-AZ replication. @default false */
  readonly multiAz?: boolean;
  readonly source: DmsDatabase & {
    /** Minutes between heartbeats, which keep an idle slot's WAL moving. @default 5 */
    readonly heartbeatFrequencyMinutes?: number;
    /**
     * Schema of DMS's DDL-capture artifacts on the source (`DdlArtifactsSchema`), which a
     * source login that is not the master needs made for it (`setUpDdlCapture`).
     * @default DMS's default, `public`
     */
    readonly ddlArtifactsSchema?: string;
  };
  readonly target: DmsDatabase;
  /** From `mappings/buildTableMappings`. */
  readonly tableMappings: TableMappings;
  /** From `mappings/buildTaskSettings`. */
  readonly taskSettings: TaskSettings;
}

/**
 * The DMS side of the pipeline: replication subnet group, a replication instance (or a
 * DMS Serverless replication config), source and target endpoints that read credentials
 * from Secrets Manager through a role trusted by the regional DMS principal, verified TLS
 * (`verify-full` against the RDS CA bundle) to both databases, heartbeat on the source, and one full-load-and-CDC task whose mappings and
 * settings come from `mappings/`. The task is not started here (CloudFormation never
 * starts tasks): see `ReplicationStarter`.
 */
export class DmsReplication extends Construct {
  readonly securityGroup: ec2.SecurityGroup;
  readonly kind: 'task' | 'serverless';
  /** The task identifier (or replication config identifier). */
  readonly replicationIdentifier: string;
  /** The task ARN (or replication config ARN). */
  readonly replicationArn: string;
  /** The task (or replication config) resource, for dependencies. */
  readonly replicationResource: CfnResource;
  /** The replication instance identifier (mode instance), the CloudWatch dimension. */
  readonly instanceIdentifier?: string;
  readonly subnetGroup: dms.CfnReplicationSubnetGroup;
  readonly secretsAccessRole: iam.Role;
  readonly sourceEndpoint: dms.CfnEndpoint;
  readonly targetEndpoint: dms.CfnEndpoint;
  /** The RDS CA bundle imported into DMS; both endpoints verify the server against it. */
  readonly certificate: dms.CfnCertificate;

  constructor(scope: Construct, id: string, props: DmsReplicationProps) {
    super(scope, id);
    this.kind = props.mode === 'serverless' ? 'serverless' : 'task';
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'audit-trail DMS replication',
      // Egress only to the two databases and Secrets Manager, added where those are wired.
      allowAllOutbound: false,
    });
    this.subnetGroup = new dms.CfnReplicationSubnetGroup(this, 'SubnetGroup', {
      replicationSubnetGroupDescription: 'audit-trail DMS replication',
      replicationSubnetGroupIdentifier: `${props.identifier}-subnets`,
      subnetIds: props.subnetIds,
    });

    this.secretsAccessRole = new iam.Role(this, 'SecretsAccessRole', {
      // DMS assumes endpoint secret roles with its regional principal, not dms.amazonaws.com.
      assumedBy: new iam.ServicePrincipal(Fn.sub('dms.${AWS::Region}.amazonaws.com')),
      description: 'lets DMS endpoints read the audit-trail database secrets',
    });
    props.source.secret.grantRead(this.secretsAccessRole);
    props.target.secret.grantRead(this.secretsAccessRole);

    // verify-full: the server's certificate must chain to an RDS CA and name the host.
    this.certificate = new dms.CfnCertificate(this, 'RdsCaCertificate', {
      certificatePem: rdsCaBundle(),
    });
    const tls = { sslMode: 'verify-full', certificateArn: this.certificate.ref };
    this.sourceEndpoint = new dms.CfnEndpoint(this, 'SourceEndpoint', {
      endpointIdentifier: `${props.identifier}-source`,
      endpointType: 'source',
      engineName: props.source.engine ?? 'aurora-postgresql',
      databaseName: props.source.databaseName,
      ...tls,
      postgreSqlSettings: {
        secretsManagerSecretId: props.source.secret.secretArn,
        secretsManagerAccessRoleArn: this.secretsAccessRole.roleArn,
        // DMS decodes with pglogical wherever that extension is installed; the kit's
        // facts about the stream (a partition's changes under the leaf's name, generated
        // columns in every INSERT, migrate's pending-change check) are test_decoding's.
        pluginName: 'test-decoding',
        heartbeatEnable: true,
        heartbeatFrequency: props.source.heartbeatFrequencyMinutes ?? 5,
        ...(props.source.ddlArtifactsSchema !== undefined && {
          ddlArtifactsSchema: props.source.ddlArtifactsSchema,
        }),
      },
    });
    this.targetEndpoint = new dms.CfnEndpoint(this, 'TargetEndpoint', {
      endpointIdentifier: `${props.identifier}-target`,
      endpointType: 'target',
      engineName: props.target.engine ?? 'aurora-postgresql',
      databaseName: props.target.databaseName,
      ...tls,
      postgreSqlSettings: {
        secretsManagerSecretId: props.target.secret.secretArn,
        secretsManagerAccessRoleArn: this.secretsAccessRole.roleArn,
      },
    });
    // The role's policy must exist before DMS tests the endpoint connections.
    this.sourceEndpoint.node.addDependency(this.secretsAccessRole);
    this.targetEndpoint.node.addDependency(this.secretsAccessRole);

    if (this.kind === 'serverless') {
      this.replicationIdentifier = `${props.identifier}-replication`;
      const config = new dms.CfnReplicationConfig(this, 'ReplicationConfig', {
        replicationConfigIdentifier: this.replicationIdentifier,
        replicationType: 'full-load-and-cdc',
        sourceEndpointArn: this.sourceEndpoint.ref,
        targetEndpointArn: this.targetEndpoint.ref,
        computeConfig: {
          minCapacityUnits: props.minCapacityUnits ?? 1,
          maxCapacityUnits: props.maxCapacityUnits ?? 4,
          multiAz: props.multiAz ?? false,
          replicationSubnetGroupId: this.subnetGroup.ref,
          vpcSecurityGroupIds: [this.securityGroup.securityGroupId],
        },
        tableMappings: props.tableMappings,
        replicationSettings: props.taskSettings,
      });
      this.replicationArn = config.attrReplicationConfigArn;
      this.replicationResource = config;
      return;
    }

    this.instanceIdentifier = `${props.identifier}-instance`;
    const instance = new dms.CfnReplicationInstance(this, 'Instance', {
      replicationInstanceIdentifier: this.instanceIdentifier,
      replicationInstanceClass: props.instanceClass ?? 'dms.t3.medium',
      allocatedStorage: props.allocatedStorageGb ?? 50,
      multiAz: props.multiAz ?? false,
      publiclyAccessible: false,
      autoMinorVersionUpgrade: true,
      replicationSubnetGroupIdentifier: this.subnetGroup.ref,
      vpcSecurityGroupIds: [this.securityGroup.securityGroupId],
      ...(props.engineVersion !== undefined && { engineVersion: props.engineVersion }),
    });
    this.replicationIdentifier = `${props.identifier}-task`;
    const task = new dms.CfnReplicationTask(this, 'Task', {
      replicationTaskIdentifier: this.replicationIdentifier,
      migrationType: 'full-load-and-cdc',
      replicationInstanceArn: instance.ref,
      sourceEndpointArn: this.sourceEndpoint.ref,
      targetEndpointArn: this.targetEndpoint.ref,
      tableMappings: JSON.stringify(props.tableMappings),
      replicationTaskSettings: JSON.stringify(props.taskSettings),
    });
    this.replicationArn = task.ref;
    this.replicationResource = task;
  }
}
