import { existsSync } from 'node:fs';
import path from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { packageRoot } from '../../src/support/package-root';
import { acknowledge } from '../nag';

/** The kit's own folder (where its package.json is), from a checkout or a registry install. */
export const KIT_ROOT = packageRoot();

/** Lock files NodejsFunction can install the bundle's external modules from. */
const LOCK_FILES = ['package-lock.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lockb'];

/**
 * Where a Lambda handler's code is. In a checkout the TypeScript source is bundled.
 * A registry install ships only the compiled `dist/`, so its JavaScript is bundled
 * instead (same code, same esbuild, no TypeScript needed by the user).
 */
export function handlerEntry(entry: string, root = KIT_ROOT): string {
  const source = path.join(root, entry);
  if (existsSync(source)) return source;
  const compiled = path.join(root, 'dist', entry.replace(/\.ts$/, '.js'));
  if (existsSync(compiled)) return compiled;
  throw new Error(
    `cannot find the Lambda handler ${entry} under ${root} (neither the source nor dist/): reinstall audit-trail-kit`,
  );
}

/**
 * The project whose lock file pins the bundle's dependencies: the kit itself in a
 * checkout, or the nearest folder above an installed kit that has a lock file (the
 * user's CDK app). esbuild runs there, so it must be installed in that project.
 */
export function bundlingProject(root = KIT_ROOT): { projectRoot: string; lockFile: string } {
  for (let dir = root; ; dir = path.dirname(dir)) {
    const lockFile = LOCK_FILES.map((name) => path.join(dir, name)).find((file) =>
      existsSync(file),
    );
    if (lockFile !== undefined) return { projectRoot: dir, lockFile };
    if (path.dirname(dir) === dir)
      throw new Error(
        `no lock file (${LOCK_FILES.join(', ')}) in ${root} or any folder above it: the CDK app that uses audit-trail-kit needs one to bundle the kit's Lambda functions`,
      );
  }
}

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
  const { projectRoot, lockFile } = bundlingProject();
  // afterBundling's inputDir is projectRoot, which is above the kit when it is installed.
  const kitFromProject = path.relative(projectRoot, KIT_ROOT);
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const fn = new nodejs.NodejsFunction(scope, id, {
    entry: handlerEntry(props.entry),
    handler: 'handler',
    projectRoot,
    depsLockFilePath: lockFile,
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
                    `cp -r "${path.join(inputDir, kitFromProject, folder)}" "${path.join(outputDir, folder)}"`,
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
