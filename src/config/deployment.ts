import { z } from 'zod';

/**
 * The `deployment` section: what the CDK app stands up in AWS.
 * Filled in by the deployment feature; optional so local use needs none of it.
 */
export const deploymentSchema = z.object({}).passthrough();

export type DeploymentConfig = z.infer<typeof deploymentSchema>;
