import path from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { acknowledge } from '../nag';

/** The kit's root folder (where package.json and package-lock.json are). */
export const KIT_ROOT = path.resolve(__dirname, '..', '..');

/** Props of {@link bundledFunction}. */
export interface BundledFunctionProps {
  /** Handler file relative to the kit root, exporting `handler`. */
  readonly entry: string;
  readonly description: string;
  /** @default 5 minutes */
  readonly timeout?: Duration;
  /** @default 512 */
  readonly memorySize?: number;
  /** Run inside this VPC. @default not in a VPC */
  readonly vpc?: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly securityGroups?: ec2.ISecurityGroup[];
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** Files copied from the kit root into the bundle (the migrations read `triggers/*.sql`). @default [] */
  readonly copyFolders?: readonly string[];
}

/**
 * A Lambda function bundled from the kit's TypeScript with esbuild on this machine (no
 * Docker). The AWS SDK is bundled too, so the function runs the exact client versions
 * the kit was tested with. `pg-native` (an optional peer of pg) and `tsx` (used only to
 * load `.ts` configs from disk) are left out.
 */
export function bundledFunction(
  scope: Construct,
  id: string,
  props: BundledFunctionProps,
): nodejs.NodejsFunction {
  const copyFolders = props.copyFolders ?? [];
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const fn = new nodejs.NodejsFunction(scope, id, {
    entry: path.join(KIT_ROOT, props.entry),
    handler: 'handler',
    projectRoot: KIT_ROOT,
    depsLockFilePath: path.join(KIT_ROOT, 'package-lock.json'),
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    description: props.description,
    timeout: props.timeout ?? Duration.minutes(5),
    memorySize: props.memorySize ?? 512,
    logGroup,
    ...(props.vpc && {
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
    }),
    bundling: {
      format: nodejs.OutputFormat.CJS,
      target: 'node24',
      minify: true,
      sourceMap: true,
      externalModules: ['pg-native', 'tsx'],
      forceDockerBundling: false,
      commandHooks: {
        beforeBundling: () => [],
        beforeInstall: () => [],
        // packageRoot() finds the kit by its package.json, then reads triggers/*.sql.
        afterBundling: (inputDir: string, outputDir: string) =>
          copyFolders.length === 0
            ? []
            : [
                ...copyFolders.map(
                  (folder) =>
                    `cp -r "${path.join(inputDir, folder)}" "${path.join(outputDir, folder)}"`,
                ),
                `echo '{"name":"audit-trail-lambda","private":true}' > "${path.join(outputDir, 'package.json')}"`,
              ],
      },
    },
  });
  acknowledge(
    fn,
    'AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch logs (and, in a VPC, AWSLambdaVPCAccessExecutionRole only manages its ENIs): the least privilege Lambda offers for these',
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    ...(props.vpc
      ? [
          'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        ]
      : []),
  );
  return fn;
}

/**
 * Acknowledges the findings on a custom-resource provider's framework function, which
 * aws-cdk-lib creates and configures (managed logging policy, invoke on the handler's
 * versions).
 */
export function acknowledgeProviderFramework(
  provider: cr.Provider,
  handler: lambda.IFunction,
): void {
  acknowledge(
    provider,
    'the CDK custom-resource framework function only writes its logs with the AWS managed basic execution policy',
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
  );
  acknowledge(
    provider,
    'the framework may invoke any version of its own onEvent handler (ARN:*), nothing else',
    `AwsSolutions-IAM5[Resource::<${Stack.of(provider).getLogicalId(handler.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
  );
  acknowledge(
    provider,
    'the framework function runtime is chosen and updated by aws-cdk-lib',
    'AwsSolutions-L1',
  );
}
