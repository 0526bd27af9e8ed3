import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** Runs the cdk-nag AwsSolutions pack on every stack of the app at synth. */
export function applyNag(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

/**
 * Acknowledges cdk-nag findings on a construct (and everything under it). Each id is a
 * full finding id (`AwsSolutions-IAM5[Resource::*]`); the reason says why the finding is
 * acceptable here and is kept next to the construct it is about.
 */
export function acknowledge(construct: IConstruct, reason: string, ...ids: string[]): void {
  for (const id of ids) Validations.of(construct).acknowledge({ id, reason });
}
