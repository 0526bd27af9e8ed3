import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { SourceConfig } from '../../src/config/deployment';
import { TLS_PARAMETERS } from './database-defaults';
import { PostgresDatabase } from './postgres-database';

/** The replication settings of a new source (Aurora cluster or RDS instance). */
export interface ReplicationSettings {
  /** `wal_sender_timeout` in ms; DMS needs 0 or at least 10000. @default 60000 */
  readonly walSenderTimeoutMs?: number;
  /** `max_slot_wal_keep_size` in MB; -1 leaves the parameter out (unbounded). @default 20480 */
  readonly maxSlotWalKeepSizeMb?: number;
}

/** Props of {@link SourceDatabase}. */
export interface SourceDatabaseProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  /** The validated `deployment.source` section. */
  readonly source: SourceConfig;
  /** Deletion protection and RETAIN (otherwise SNAPSHOT on delete). @default false */
  readonly production?: boolean;
  /** Retention of the exported PostgreSQL log. @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Set a new database up for DMS logical replication ({@link replicationParameters}).
   * False for an access-audit-only deployment, which has no DMS task (logical
   * replication would only add WAL).
   * @default true
   */
  readonly logicalReplication?: boolean;
  /**
   * More parameters merged over the kit's, for example the access audit's
   * `shared_preload_libraries: pgaudit` and `pgaudit.*` settings. They go into the DB
   * cluster parameter group (Aurora) or the DB parameter group (instance). Ignored for an
   * existing database (set them on its parameter group).
   * @default {}
   */
  readonly extraParameters?: Record<string, string>;
}

/**
 * The parameters DMS change data capture needs, for a DB cluster parameter group (Aurora)
 * or a DB parameter group (RDS for PostgreSQL) alike.
 */
export function replicationParameters(source: ReplicationSettings): Record<string, string> {
  const walKeep = source.maxSlotWalKeepSizeMb ?? 20_480;
  return {
    // Static: applied when the database is created; an existing one needs a reboot.
    'rds.logical_replication': '1',
    wal_sender_timeout: String(source.walSenderTimeoutMs ?? 60_000),
    ...(walKeep >= 0 && { max_slot_wal_keep_size: String(walKeep) }),
  };
}

/**
 * The source database whose tables are audited: a new Aurora PostgreSQL cluster or RDS
 * for PostgreSQL instance ready for logical replication (parameter group with
 * `rds.logical_replication`, PostgreSQL log exported to CloudWatch, encrypted, private),
 * or an existing one imported by identifier, endpoint, secret and security group.
 */
export class SourceDatabase extends PostgresDatabase {
  /** Cluster identifier of an Aurora source (undefined for an RDS instance). */
  readonly clusterIdentifier?: string;

  constructor(scope: Construct, id: string, props: SourceDatabaseProps) {
    const source = props.source;
    super(scope, id, {
      vpc: props.vpc,
      subnets: props.subnets,
      spec: source,
      databaseName: source.databaseName,
      purpose:
        props.logicalReplication === false
          ? 'source: access audit'
          : 'source: logical replication for DMS',
      ...(source.mode === 'new' && {
        parameters: {
          ...TLS_PARAMETERS,
          ...(props.logicalReplication !== false && replicationParameters(source)),
          ...props.extraParameters,
        },
      }),
      ...(props.production !== undefined && { production: props.production }),
      ...(props.logRetention !== undefined && { logRetention: props.logRetention }),
    });
    if (this.engine === 'aurora-postgresql') this.clusterIdentifier = this.identifier;
  }
}
