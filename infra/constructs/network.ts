import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { SecretsManagerAccessConfig } from '../../src/config/deployment';
import { acknowledge, EGRESS_ANYWHERE } from '../nag';

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
  /**
   * How the kit's functions in an existing VPC reach Secrets Manager (a new VPC always gets
   * the kit's own closed endpoint). `kit-endpoint`: the kit creates a closed interface
   * endpoint in `privateSubnetIds`, serving only its secrets; `endpoint-security-group`:
   * HTTPS to the VPC's own endpoint, named by its security group (the kit adds ingress
   * from each function); `prefix-list`: HTTPS to a prefix list holding that endpoint's
   * addresses; `any-https`: HTTPS anywhere (a NAT to the public endpoint), acknowledged as
   * `AuditTrail-EgressToAnywhere` on each function's group.
   * @default { access: 'kit-endpoint' }
   */
  readonly secretsManager?: SecretsManagerAccessConfig;
}

/**
 * A security group for an interface endpoint: HTTPS in from the clients allowed one by
 * one, nothing out (an endpoint only answers; CDK's default group allows all egress).
 */
export function endpointSecurityGroup(
  scope: Construct,
  id: string,
  vpc: ec2.IVpc,
  description: string,
): ec2.SecurityGroup {
  return new ec2.SecurityGroup(scope, id, { vpc, description, allowAllOutbound: false });
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
  /** True when the kit created the VPC (it may then add gateway endpoints to its routes). */
  readonly created: boolean;
  /**
   * The kit's own Secrets Manager interface endpoint (closed: allow each client with
   * `allowSecretsManagerFrom`): always in a new VPC, and in an existing VPC with
   * `secretsManager.access` `kit-endpoint`. Undefined when the existing VPC's is used.
   */
  readonly secretsManagerEndpoint?: ec2.InterfaceVpcEndpoint;
  /** How clients reach Secrets Manager in an existing VPC that is not the kit's endpoint. */
  private readonly existingAccess?: Exclude<SecretsManagerAccessConfig, { access: 'kit-endpoint' }>;
  private existingEndpointGroup?: ec2.ISecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkProps = {}) {
    super(scope, id);
    if (props.vpcId !== undefined) {
      this.created = false;
      this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: props.vpcId,
        availabilityZones: [...(props.availabilityZones ?? [])],
        privateSubnetIds: [...(props.privateSubnetIds ?? [])],
      });
      this.subnets = { subnets: this.vpc.privateSubnets };
      this.subnetIds = [...(props.privateSubnetIds ?? [])];
      const access = props.secretsManager ?? { access: 'kit-endpoint' };
      if (access.access === 'kit-endpoint') {
        this.secretsManagerEndpoint = this.addSecretsManagerEndpoint(this.vpc, this.subnets);
      } else {
        this.existingAccess = access;
      }
      return;
    }
    this.created = true;
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
    this.secretsManagerEndpoint = this.addSecretsManagerEndpoint(vpc, this.subnets);
    this.vpc = vpc;
    this.subnetIds = vpc.isolatedSubnets.map((subnet) => subnet.subnetId);
  }

  /**
   * The kit's Secrets Manager endpoint, with private DNS so DMS (which cannot be given an
   * endpoint URL) uses it too. In an existing VPC that already has one with private DNS,
   * EC2 refuses a second (conflicting DNS domain): name that one instead.
   */
  private addSecretsManagerEndpoint(
    vpc: ec2.IVpc,
    subnets: ec2.SubnetSelection,
  ): ec2.InterfaceVpcEndpoint {
    // Under the VPC's scope as `SecretsManager` (the id it always had): a new logical id
    // would replace the endpoint, and the replacement's private DNS would conflict.
    return vpc.addInterfaceEndpoint('SecretsManager', {
      service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      subnets,
      privateDnsEnabled: true,
      // Only the clients named with allowSecretsManagerFrom, not the whole VPC CIDR.
      open: false,
      securityGroups: [
        endpointSecurityGroup(
          this,
          'SecretsManagerEndpointGroup',
          vpc,
          'audit-trail SecretsManager endpoint',
        ),
      ],
    });
  }

  /**
   * Lets `client` reach Secrets Manager over HTTPS: through the kit's endpoint, or as
   * `secretsManager` says for an existing VPC (its endpoint's group, a prefix list, or,
   * acknowledged on `client`, anywhere).
   */
  allowSecretsManagerFrom(client: ec2.SecurityGroup): void {
    const description = 'reads database secrets';
    if (this.secretsManagerEndpoint) {
      this.secretsManagerEndpoint.connections.allowDefaultPortFrom(client, description);
      return;
    }
    const access = this.existingAccess!;
    switch (access.access) {
      case 'endpoint-security-group':
        this.existingEndpointGroup ??= ec2.SecurityGroup.fromSecurityGroupId(
          this,
          'SecretsManagerEndpointGroup',
          access.securityGroupId,
        );
        client.connections.allowTo(
          this.existingEndpointGroup,
          ec2.Port.tcp(443),
          `${description} (the VPC's Secrets Manager endpoint)`,
        );
        return;
      case 'prefix-list':
        client.addEgressRule(
          ec2.Peer.prefixList(access.prefixListId),
          ec2.Port.tcp(443),
          `${description} (Secrets Manager endpoint prefix list)`,
        );
        return;
      case 'any-https':
        client.addEgressRule(
          ec2.Peer.anyIpv4(),
          ec2.Port.tcp(443),
          `${description} (Secrets Manager through the VPC's NAT)`,
        );
        acknowledge(
          client,
          'deployment.network.secretsManager.access is "any-https": the existing VPC reaches Secrets Manager through a NAT, whose public addresses no prefix list names; HTTPS to anywhere is the operator\'s stated choice',
          EGRESS_ANYWHERE,
        );
        return;
    }
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
