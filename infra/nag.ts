import { CfnResource, Stack, Validations, type App } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import {
  AwsSolutionsChecks,
  NagMessageLevel,
  NagPack,
  NagRuleCompliance,
  NagRules,
  type NagPackProps,
} from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** Runs the cdk-nag AwsSolutions pack and the kit's own checks on every stack of the app at synth. */
export function applyNag(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new AuditTrailChecks(app));
}

/**
 * Acknowledges cdk-nag findings on a construct (and everything under it). Each id is a
 * full finding id (`AwsSolutions-IAM5[Resource::*]`); the reason says why the finding is
 * acceptable here and is kept next to the construct it is about.
 */
export function acknowledge(construct: IConstruct, reason: string, ...ids: string[]): void {
  for (const id of ids) Validations.of(construct).acknowledge({ id, reason });
}

/** The finding id of {@link egressToAnywhere}. */
export const EGRESS_ANYWHERE = 'AuditTrail-EgressToAnywhere';

/** True when a CIDR is the whole IPv4 or IPv6 internet. */
function isAnywhere(cidr: unknown): boolean {
  return cidr === '0.0.0.0/0' || cidr === '::/0';
}

/**
 * A security group may not send to the whole internet. AwsSolutions checks ingress only;
 * in a compliance deployment open egress is the exfiltration path, so every function's
 * group names where it may go, and an exception is acknowledged where it is made.
 */
function egressToAnywhere(node: CfnResource): NagRuleCompliance {
  if (node instanceof ec2.CfnSecurityGroup) {
    const rules = (Stack.of(node).resolve(node.securityGroupEgress) ?? []) as {
      cidrIp?: unknown;
      cidrIpv6?: unknown;
      CidrIp?: unknown;
      CidrIpv6?: unknown;
    }[];
    const open = rules.some((rule) =>
      [rule.cidrIp, rule.cidrIpv6, rule.CidrIp, rule.CidrIpv6].some(isAnywhere),
    );
    return open ? NagRuleCompliance.NON_COMPLIANT : NagRuleCompliance.COMPLIANT;
  }
  if (node instanceof ec2.CfnSecurityGroupEgress) {
    const open =
      isAnywhere(NagRules.resolveIfPrimitive(node, node.cidrIp)) ||
      isAnywhere(NagRules.resolveIfPrimitive(node, node.cidrIpv6));
    return open ? NagRuleCompliance.NON_COMPLIANT : NagRuleCompliance.COMPLIANT;
  }
  return NagRuleCompliance.NOT_APPLICABLE;
}
Object.defineProperty(egressToAnywhere, 'name', { value: 'EgressToAnywhere' });

/** The kit's own cdk-nag rules (pack `AuditTrail`), beside AwsSolutions. */
export class AuditTrailChecks extends NagPack {
  readonly name = 'AuditTrail';

  constructor(scope?: IConstruct, props?: NagPackProps) {
    super(scope, props);
    this.packName = 'AuditTrail';
  }

  protected checkResource(node: CfnResource): void {
    this.applyRule({
      info: 'The security group allows egress to 0.0.0.0/0 or ::/0.',
      explanation:
        'Every function of the kit names where it may connect (database ports, VPC endpoints, prefix lists); open egress is an exfiltration path and needs an acknowledged reason.',
      level: NagMessageLevel.ERROR,
      node,
      rule: egressToAnywhere,
    });
  }
}
