import { z } from 'zod';
import { chainAnchorsSchema } from './chain-anchors';

/** An AWS account id: 12 digits. */
const accountIdSchema = z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id');

/** An AWS region name such as `eu-west-1`. */
const regionSchema = z
  .string()
  .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as eu-west-1');

/** An Aurora PostgreSQL or RDS for PostgreSQL engine version such as `16.6`. */
const engineVersionSchema = z
  .string()
  .regex(/^\d{2}\.\d+$/, 'must be a PostgreSQL engine version such as 16.6');

/** Aurora Serverless v2 capacity in ACUs (0 allows auto-pause on recent engine versions). */
const acuSchema = z.number().min(0).max(256);

/**
 * `network.secretsManager`: how the kit's functions and DMS in an existing VPC reach
 * Secrets Manager. The kit cannot see that VPC's endpoints, so it either creates its own
 * or is told which one to use; HTTPS to anywhere is only ever an explicit choice.
 */
export const secretsManagerAccessSchema = z.discriminatedUnion('access', [
  /** The kit creates a closed interface endpoint (private DNS) serving only its secrets. */
  z.object({ access: z.literal('kit-endpoint') }).strict(),
  /** The VPC's own endpoint, by its security group; the kit adds HTTPS ingress from each function. */
  z
    .object({
      access: z.literal('endpoint-security-group'),
      securityGroupId: z
        .string()
        .regex(/^sg-[0-9a-f]+$/, 'must be a security group id such as sg-0abc123'),
    })
    .strict(),
  /** A (customer-managed) prefix list holding the VPC's endpoint addresses. */
  z
    .object({
      access: z.literal('prefix-list'),
      prefixListId: z
        .string()
        .regex(/^pl-[0-9a-f]+$/, 'must be a prefix list id such as pl-0abc123'),
    })
    .strict(),
  /** HTTPS to anywhere (a NAT to the public endpoint): acknowledged in cdk-nag per function. */
  z.object({ access: z.literal('any-https') }).strict(),
]);

/**
 * `network`: the VPC everything runs in. Either a new VPC (the default) or an
 * existing one imported by id. Importing takes the subnet ids explicitly so synth
 * never needs a lookup (it works offline, without credentials).
 */
export const networkSchema = z
  .object({
    /**
     * Id of an existing VPC. When set, `availabilityZones` and `privateSubnetIds` are
     * required and nothing network-related is created.
     * @default undefined (a new VPC is created)
     */
    vpcId: z
      .string()
      .regex(/^vpc-[0-9a-f]+$/, 'must be a VPC id such as vpc-0abc123')
      .optional(),
    /** AZs of `privateSubnetIds`, in the same order. Only with `vpcId`. @default [] */
    availabilityZones: z.array(z.string().min(1)).default([]),
    /**
     * Private subnets (at least two, in different AZs) for the databases, DMS and the
     * migrations Lambda. They must reach Secrets Manager (NAT or VPC endpoint). Only with `vpcId`.
     * @default []
     */
    privateSubnetIds: z
      .array(z.string().regex(/^subnet-[0-9a-f]+$/, 'must be a subnet id'))
      .default([]),
    /**
     * How functions in the existing VPC reach Secrets Manager (see
     * {@link secretsManagerAccessSchema}). Only with `vpcId`: a new VPC always gets the
     * kit's endpoint.
     * @default { "access": "kit-endpoint" } with `vpcId`
     */
    secretsManager: secretsManagerAccessSchema.optional(),
    /** AZs used by a new VPC. @default 2 */
    maxAzs: z.number().int().min(2).max(6).default(2),
    /** CIDR of a new VPC. @default "10.40.0.0/16" */
    cidr: z.string().default('10.40.0.0/16'),
  })
  .strict()
  .superRefine((network, ctx) => {
    if (network.vpcId === undefined) {
      if (network.secretsManager !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['secretsManager'],
          message: 'only with vpcId: a new VPC always gets the kit’s own Secrets Manager endpoint',
        });
      }
      return;
    }
    if (network.privateSubnetIds.length < 2) {
      ctx.addIssue({
        code: 'custom',
        path: ['privateSubnetIds'],
        message: 'needs at least two subnets with vpcId',
      });
    }
    if (network.availabilityZones.length !== network.privateSubnetIds.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['availabilityZones'],
        message: 'must list one AZ per entry of privateSubnetIds',
      });
    }
  });

/** The Aurora engine: the default wherever `engine` is left out. */
const auroraEngine = z.literal('aurora-postgresql').default('aurora-postgresql');

/** An RDS for PostgreSQL DB instance. */
const instanceEngine = z.literal('postgres');

/** A DB instance class such as `db.t4g.small`. */
const instanceClassSchema = z
  .string()
  .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, 'must be a DB instance class such as db.t4g.small');

/** Allocated gp3 storage of a new DB instance in GiB (RDS for PostgreSQL: 20 to 65536). */
const allocatedStorageSchema = z.number().int().min(20).max(65_536);

/** Fields only a DB instance config has; refused, by name, on an Aurora config. */
const INSTANCE_ONLY_FIELDS = [
  'instanceIdentifier',
  'instanceClass',
  'allocatedStorage',
  'multiAz',
  'parameters',
  'parameterGroupName',
] as const;

/** Fields only an Aurora config has; refused, by name, on an instance config. */
const CLUSTER_ONLY_FIELDS = [
  'clusterIdentifier',
  'minCapacity',
  'maxCapacity',
  'clusterParameters',
  'readerInstance',
] as const;

/**
 * A strict object whose unknown-key error says when the key belongs to the other engine,
 * so `instanceClass` on an Aurora config is refused with the reason, not just "unrecognized".
 */
function engineObject<Shape extends z.ZodRawShape>(
  engine: 'aurora-postgresql' | 'postgres',
  shape: Shape,
) {
  const foreign: readonly string[] =
    engine === 'postgres' ? CLUSTER_ONLY_FIELDS : INSTANCE_ONLY_FIELDS;
  const reason =
    engine === 'postgres'
      ? 'only for an Aurora cluster (engine "aurora-postgresql"); this config is an RDS instance (engine "postgres")'
      : 'only for an RDS for PostgreSQL instance (engine "postgres"); this config is an Aurora cluster (engine "aurora-postgresql", the default)';
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code !== 'unrecognized_keys') return undefined;
      const misplaced = issue.keys.filter((key) => foreign.includes(key));
      if (misplaced.length === 0) return undefined;
      const names = misplaced.map((key) => `"${key}"`).join(', ');
      return `${names} ${misplaced.length === 1 ? 'is' : 'are'} ${reason}`;
    },
  });
}

/**
 * `wal_sender_timeout` in ms. DMS needs 0 (off) or at least 10000.
 * @default 60000
 */
const walSenderTimeoutSchema = z
  .number()
  .int()
  .refine(
    (value) => value === 0 || value >= 10_000,
    'must be 0 or at least 10000 (DMS requirement)',
  )
  .default(60_000);

/**
 * `max_slot_wal_keep_size` in MB: bounds the WAL a stalled DMS slot can hold (the slot is
 * invalidated rather than filling storage). `-1` means unbounded.
 * @default 20480
 */
const maxSlotWalKeepSizeSchema = z.number().int().min(-1).default(20_480);

/** The fields a new source has whatever its engine. */
const newSourceShape = {
  /** Create a new database. */
  mode: z.literal('new'),
  /** PostgreSQL version (Aurora or RDS). @default "16.6" */
  engineVersion: engineVersionSchema.default('16.6'),
  /** Database DMS replicates from. @default "app" */
  databaseName: z.string().min(1).default('app'),
  /** See `walSenderTimeoutSchema` in src/config/deployment.ts. @default 60000 */
  walSenderTimeoutMs: walSenderTimeoutSchema,
  /** See `maxSlotWalKeepSizeSchema` in src/config/deployment.ts. @default 20480 */
  maxSlotWalKeepSizeMb: maxSlotWalKeepSizeSchema,
};

/** A new Aurora PostgreSQL source cluster (Serverless v2), created ready for logical replication. */
export const newSourceSchema = engineObject('aurora-postgresql', {
  ...newSourceShape,
  /** Aurora PostgreSQL. @default "aurora-postgresql" */
  engine: auroraEngine,
  /** Serverless v2 minimum ACUs of the writer. @default 0.5 */
  minCapacity: acuSchema.default(0.5),
  /** Serverless v2 maximum ACUs of the writer. @default 4 */
  maxCapacity: acuSchema.default(4),
  /**
   * More cluster parameters merged over the kit's (for example the pgAudit settings of
   * the access-audit feature). A key set here wins.
   * @default {}
   */
  clusterParameters: z.record(z.string(), z.string()).default({}),
});

/** The fields a new RDS for PostgreSQL DB instance has, source or target. */
const newInstanceShape = {
  /** An RDS for PostgreSQL DB instance. */
  engine: instanceEngine,
  /** Instance class. @default "db.t4g.small" */
  instanceClass: instanceClassSchema.default('db.t4g.small'),
  /** gp3 storage in GiB; storage autoscaling may grow it to 4×. @default 20 */
  allocatedStorage: allocatedStorageSchema.default(20),
  /** A standby in a second AZ. @default the `production` flag */
  multiAz: z.boolean().optional(),
};

/**
 * A new RDS for PostgreSQL source instance, created ready for logical replication (a DB
 * parameter group with `rds.logical_replication = 1`).
 */
export const newInstanceSourceSchema = engineObject('postgres', {
  ...newSourceShape,
  ...newInstanceShape,
  /**
   * More DB parameters merged over the kit's (for example the pgAudit settings). A key
   * set here wins.
   * @default {}
   */
  parameters: z.record(z.string(), z.string()).default({}),
});

/** Secrets Manager ARN of an imported database's credentials. */
const secretArnSchema = z
  .string()
  .regex(/^arn:aws[a-z-]*:secretsmanager:/, 'must be a Secrets Manager secret ARN');

/** The fields an imported database has whatever its engine. */
const existingShape = {
  /** Import an existing database. */
  mode: z.literal('existing'),
  /** Writer (cluster) endpoint or instance endpoint host name. */
  endpoint: z.string().min(1),
  /** Port. @default 5432 */
  port: z.number().int().min(1).max(65535).default(5432),
  /** Database name. */
  databaseName: z.string().min(1),
  /**
   * Complete ARN of a Secrets Manager secret with `username` and `password`. For a source:
   * a user that may replicate (rds_replication) and read the audited tables; for a target:
   * a user that may create the audit schema and roles (the master user). DMS rejects
   * `; . : +` in passwords.
   */
  secretArn: secretArnSchema,
  /** Security group of the database; the kit adds ingress from DMS and the migrations Lambda. */
  securityGroupId: z
    .string()
    .regex(/^sg-[0-9a-f]+$/, 'must be a security group id such as sg-0abc123'),
};

/** The fields an imported source has whatever its engine. */
const existingSourceShape = {
  ...existingShape,
  /**
   * Complete ARN of the Secrets Manager secret the access audit's canary logs in with
   * (`username` = `accessAudit.canary.role`, `password`; `host`/`port` are taken from
   * `endpoint`/`port`). The kit creates and rotates this login on a source it creates; on an
   * imported one the operator does (README "Canary: proof the audit is alive"). Without
   * it the canary is not deployed and synthesis warns.
   * @default undefined (no canary on an existing source)
   */
  canarySecretArn: secretArnSchema.optional(),
};

/**
 * An existing Aurora source cluster, imported. Its cluster parameter group must already
 * have `rds.logical_replication=1` (a static parameter: reboot the writer once after setting it).
 */
export const existingSourceSchema = engineObject('aurora-postgresql', {
  ...existingSourceShape,
  /** Aurora PostgreSQL. @default "aurora-postgresql" */
  engine: auroraEngine,
  /** Cluster identifier (as shown in the RDS console). */
  clusterIdentifier: z.string().min(1),
});

/**
 * An existing RDS for PostgreSQL DB instance, imported. Its DB parameter group must already
 * have `rds.logical_replication=1` (static: reboot the instance once after setting it).
 */
export const existingInstanceSourceSchema = engineObject('postgres', {
  ...existingSourceShape,
  /** An RDS for PostgreSQL DB instance. */
  engine: instanceEngine,
  /** DB instance identifier (as shown in the RDS console). */
  instanceIdentifier: z.string().min(1),
  /**
   * Its DB parameter group, shown in the stack outputs as the place to set the
   * replication (and pgAudit) parameters. The kit never modifies an imported group.
   * @default undefined
   */
  parameterGroupName: z.string().min(1).optional(),
});

/**
 * `source`: the database whose tables are audited. `mode` new or existing; `engine`
 * `aurora-postgresql` (an Aurora cluster, the default) or `postgres` (an RDS DB instance).
 */
export const sourceSchema = z.discriminatedUnion('mode', [
  z.discriminatedUnion('engine', [newSourceSchema, newInstanceSourceSchema]),
  z.discriminatedUnion('engine', [existingSourceSchema, existingInstanceSourceSchema]),
]);

/** The fields a new target has whatever its engine. */
const newTargetShape = {
  /** Create a new database. @default "new" */
  mode: z.literal('new').default('new'),
  /** PostgreSQL version (Aurora or RDS). @default "16.6" */
  engineVersion: engineVersionSchema.default('16.6'),
  /** Database holding the audit schema. @default "audit" */
  databaseName: z.string().min(1).default('audit'),
  /** Days of automated backups. @default 7 (35 in production is common) */
  backupRetentionDays: z.number().int().min(1).max(35).default(7),
};

/** A new Aurora Serverless v2 target cluster (the default). */
export const newTargetSchema = engineObject('aurora-postgresql', {
  ...newTargetShape,
  /** Aurora PostgreSQL. @default "aurora-postgresql" */
  engine: auroraEngine,
  /** Serverless v2 minimum ACUs. @default 0.5 */
  minCapacity: acuSchema.default(0.5),
  /** Serverless v2 maximum ACUs. @default 4 */
  maxCapacity: acuSchema.default(4),
  /** Add a reader instance in a second AZ (recommended in production). @default false */
  readerInstance: z.boolean().default(false),
});

/** A new RDS for PostgreSQL target instance. */
export const newInstanceTargetSchema = engineObject('postgres', {
  ...newTargetShape,
  ...newInstanceShape,
});

/** An existing Aurora cluster used as the target. */
export const existingTargetSchema = engineObject('aurora-postgresql', {
  ...existingShape,
  /** Aurora PostgreSQL. @default "aurora-postgresql" */
  engine: auroraEngine,
  /** Cluster identifier. */
  clusterIdentifier: z.string().min(1),
});

/** An existing RDS for PostgreSQL DB instance used as the target. */
export const existingInstanceTargetSchema = engineObject('postgres', {
  ...existingShape,
  /** An RDS for PostgreSQL DB instance. */
  engine: instanceEngine,
  /** DB instance identifier. */
  instanceIdentifier: z.string().min(1),
  /** Its DB parameter group (see the source's). @default undefined */
  parameterGroupName: z.string().min(1).optional(),
});

/**
 * `target`: the separate database holding staging tables, triggers and the audit log.
 * `mode` new (the default) or existing; `engine` as for the source.
 */
export const targetSchema = z.discriminatedUnion('mode', [
  z.discriminatedUnion('engine', [newTargetSchema, newInstanceTargetSchema]),
  z.discriminatedUnion('engine', [existingTargetSchema, existingInstanceTargetSchema]),
]);

/** `dms`: the replication compute and task. */
export const dmsSchema = z
  .object({
    /** `instance`: a replication instance; `serverless`: DMS Serverless. @default "instance" */
    mode: z.enum(['instance', 'serverless']).default('instance'),
    /** Replication instance class (mode instance). @default "dms.t3.medium" */
    instanceClass: z
      .string()
      .regex(/^dms\.[a-z0-9]+\.[a-z0-9]+$/, 'must be a class such as dms.t3.medium')
      .default('dms.t3.medium'),
    /** Replication instance storage in GB (mode instance). @default 50 */
    allocatedStorageGb: z.number().int().min(5).max(6144).default(50),
    /** DMS engine version (mode instance). @default undefined (the DMS default) */
    engineVersion: z.string().optional(),
    /** DMS capacity units (mode serverless). @default 1 */
    minCapacityUnits: z.number().int().min(1).max(384).default(1),
    /** DMS capacity units (mode serverless). @default 4 */
    maxCapacityUnits: z.number().int().min(1).max(384).default(4),
    /** Multi-AZ replication. @default the `production` flag */
    multiAz: z.boolean().optional(),
    /** Run DMS data validation alongside replication. @default false */
    validation: z.boolean().default(false),
    /**
     * Create the account-level roles `dms-vpc-role` and `dms-cloudwatch-logs-role` in a
     * separate stack. Fixed names: only once per account, and not if they exist already.
     * @default false
     */
    createAccountRoles: z.boolean().default(false),
    /** Heartbeat interval in minutes on the source endpoint (keeps an idle slot moving). @default 5 */
    heartbeatFrequencyMinutes: z.number().int().min(1).max(1440).default(5),
    /**
     * LOB handling for json, jsonb, text and bytea columns. `full` never truncates (values up
     * to `inlineLobMaxSizeKb` go inline, larger ones by lookup); `limited` is faster but
     * truncates values over `lobMaxSizeKb`, which an audit trail must not do silently.
     * @default "full"
     */
    lobMode: z.enum(['full', 'limited']).default('full'),
    /** Inline size in KB for `full` LOB mode. @default 64 */
    inlineLobMaxSizeKb: z.number().int().min(0).max(102_400).default(64),
    /** Truncation size in KB for `limited` LOB mode. @default 1024 */
    lobMaxSizeKb: z.number().int().min(1).max(102_400).default(1024),
    /** Alarm when source or target CDC latency stays above this many seconds. @default 300 */
    cdcLatencyAlarmSeconds: z.number().int().min(1).default(300),
  })
  .strict()
  .superRefine((dms, ctx) => {
    if (dms.minCapacityUnits > dms.maxCapacityUnits) {
      ctx.addIssue({
        code: 'custom',
        path: ['minCapacityUnits'],
        message: 'must not exceed maxCapacityUnits',
      });
    }
  });

/**
 * The `deployment` section: what the CDK app (`infra/app.ts`) stands up in AWS.
 * Optional in the config, so local use needs none of it; every field has a default.
 */
export const deploymentSchema = z
  .object({
    /** Prefix of stack names and resource identifiers. @default "AuditTrail" */
    stackName: z
      .string()
      .regex(
        /^[A-Za-z][A-Za-z0-9-]{0,39}$/,
        'must be letters, digits and dashes, starting with a letter',
      )
      .default('AuditTrail'),
    /** Account to deploy to. @default undefined (environment-agnostic: the CLI's credentials decide) */
    account: accountIdSchema.optional(),
    /** Region to deploy to. @default undefined (environment-agnostic) */
    region: regionSchema.optional(),
    /**
     * Production: deletion protection and RETAIN on databases, multi-AZ DMS, longer log
     * retention. Otherwise databases are snapshotted on delete.
     * @default false
     */
    production: z.boolean().default(false),
    /** Email subscribed to the alarm topic. @default undefined (subscribe yourself) */
    alarmEmail: z.email('must be an email address').optional(),
    /**
     * Days between rotations of every database secret the kit owns (the master secrets of
     * the databases it creates and its service logins), by Secrets Manager's hosted
     * single-user rotation. Secrets of existing databases are the owner's to rotate.
     * @default 30
     */
    secretRotationDays: z.number().int().min(1).max(1000).default(30),
    /** Days CloudWatch keeps the database and Lambda logs. @default 30 (365 in production) */
    logRetentionDays: z.number().int().min(1).optional(),
    /** See {@link networkSchema}. @default a new VPC */
    network: networkSchema.default(() => networkSchema.parse({})),
    /** See {@link sourceSchema}. @default a new cluster */
    source: sourceSchema.default(() => newSourceSchema.parse({ mode: 'new' })),
    /** See {@link targetSchema}. @default a new Aurora Serverless v2 cluster, 0.5-4 ACU */
    target: targetSchema.default(() => targetSchema.parse({})),
    /** See {@link dmsSchema}. @default a dms.t3.medium instance */
    dms: dmsSchema.default(() => dmsSchema.parse({})),
    /** See `chainAnchorsSchema` in src/config/deployment.ts. @default anchors every 5 minutes to an Object Lock bucket */
    anchors: chainAnchorsSchema.default(() => chainAnchorsSchema.parse({})),
  })
  .strict();

export type NetworkConfig = z.infer<typeof networkSchema>;
export type SecretsManagerAccessConfig = z.infer<typeof secretsManagerAccessSchema>;
export type NewSourceConfig = z.infer<typeof newSourceSchema>;
export type NewInstanceSourceConfig = z.infer<typeof newInstanceSourceSchema>;
export type ExistingSourceConfig = z.infer<typeof existingSourceSchema>;
export type ExistingInstanceSourceConfig = z.infer<typeof existingInstanceSourceSchema>;
export type SourceConfig = z.infer<typeof sourceSchema>;
export type TargetConfig = z.infer<typeof targetSchema>;
export type DmsConfig = z.infer<typeof dmsSchema>;
export type DeploymentConfig = z.infer<typeof deploymentSchema>;
export type DeploymentConfigInput = z.input<typeof deploymentSchema>;

/** The deployment section with every default applied, also when the config has none. */
export function resolveDeployment(deployment: DeploymentConfig | undefined): DeploymentConfig {
  return deployment ?? deploymentSchema.parse({});
}
