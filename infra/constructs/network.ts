import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/** Props of {@link Network}. */
export interface NetworkProps {
  /**
   * Id of an existing VPC to use instead of creating one. Requires `availabilityZones`
   * and `privateSubnetIds`, so synth needs no lookup (and no credentials).
   * @default undefined (a new VPC)
   */
  readonly vpcId?: string;
  /** AZs of `privateSubnetIds`, in the same order (existing VPC only). @default [] */
  readonly availabilityZones?: readonly string[];
  /** Private subnets of the existing VPC; they must reach Secrets Manager. @default [] */
  readonly privateSubnetIds?: readonly string[];
  /** AZs of a new VPC. @default 2 */
  readonly maxAzs?: number;
  /** CIDR of a new VPC. @default "10.40.0.0/16" */
  readonly cidr?: string;
  /** Retention of a new VPC's flow logs. @default RetentionDays.ONE_MONTH */
  readonly flowLogRetention?: logs.RetentionDays;
}

/**
 * The VPC the databases, DMS and the migrations Lambda run in. A new VPC has isolated
 * subnets only (no internet gateway, no NAT): the one AWS API called from inside, Secrets
 * Manager (DMS endpoints and the migrations Lambda read credentials), is reached through
 * an interface endpoint, and all traffic is recorded in flow logs.
 */
export class Network extends Construct {
  readonly vpc: ec2.IVpc;
  /** The private subnets everything is placed in. */
  readonly subnets: ec2.SubnetSelection;
  /** The subnet ids, for DMS's replication subnet group. */
  readonly subnetIds: string[];
  /**
   * The Secrets Manager interface endpoint of a new VPC (closed: allow each client with
   * `allowSecretsManagerFrom`). Undefined for an existing VPC.
   */
  readonly secretsManagerEndpoint?: ec2.InterfaceVpcEndpoint;

  constructor(scope: Construct, id: string, props: NetworkProps = {}) {
    super(scope, id);
    if (props.vpcId !== undefined) {
      this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: props.vpcId,
        availabilityZones: [...(props.availabilityZones ?? [])],
        privateSubnetIds: [...(props.privateSubnetIds ?? [])],
      });
      this.subnets = { subnets: this.vpc.privateSubnets };
      this.subnetIds = [...(props.privateSubnetIds ?? [])];
      return;
    }
    const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.flowLogRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr ?? '10.40.0.0/16'),
      maxAzs: props.maxAzs ?? 2,
      natGateways: 0,
      subnetConfiguration: [
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 },
      ],
      flowLogs: {
        all: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
    });
    this.subnets = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
    this.secretsManagerEndpoint = vpc.addInterfaceEndpoint('SecretsManager', {
      service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      subnets: this.subnets,
      privateDnsEnabled: true,
      // Only the clients named with allowSecretsManagerFrom, not the whole VPC CIDR.
      open: false,
    });
    this.vpc = vpc;
    this.subnetIds = vpc.isolatedSubnets.map((subnet) => subnet.subnetId);
  }

  /**
   * Lets `client` reach Secrets Manager: through the VPC endpoint of a new VPC, or over
   * HTTPS to wherever an existing VPC routes it (its NAT or its own endpoint).
   */
  allowSecretsManagerFrom(client: ec2.IConnectable): void {
    if (this.secretsManagerEndpoint) {
      this.secretsManagerEndpoint.connections.allowDefaultPortFrom(
        client,
        'reads database secrets',
      );
      return;
    }
    client.connections.allowToAnyIpv4(
      ec2.Port.tcp(443),
      'Secrets Manager through the existing VPC (NAT or endpoint)',
    );
  }

  /**
   * Lets the rotation functions write new versions of `secrets` through the endpoint of a
   * new VPC (the single-user rotation also asks Secrets Manager for a random password,
   * which names no secret). Pair with {@link restrictSecretsManagerTo} for reading them.
   */
  allowSecretRotationOf(secrets: readonly secretsmanager.ISecret[]): void {
    if (secrets.length === 0) return;
    this.secretsManagerEndpoint?.addToPolicy(
      new iam.PolicyStatement({
        principals: [new iam.AnyPrincipal()],
        actions: ['secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecretVersionStage'],
        resources: secrets.map((secret) => secret.secretArn),
      }),
    );
    this.secretsManagerEndpoint?.addToPolicy(
      new iam.PolicyStatement({
        principals: [new iam.AnyPrincipal()],
        actions: ['secretsmanager:GetRandomPassword'],
        resources: ['*'],
      }),
    );
  }

  /**
   * Limits what the Secrets Manager endpoint of a new VPC serves to reading `secrets`: a
   * stolen credential used from inside the VPC cannot reach any other secret through it.
   */
  restrictSecretsManagerTo(secrets: readonly secretsmanager.ISecret[]): void {
    this.secretsManagerEndpoint?.addToPolicy(
      new iam.PolicyStatement({
        principals: [new iam.AnyPrincipal()],
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        resources: secrets.map((secret) => secret.secretArn),
      }),
    );
  }
}
