/** onEvent of the activity-stream custom resources (CDK provider framework). */
import { RDSClient } from '@aws-sdk/client-rds';
import { controlActivityStream, type ActivityStreamEvent } from './control';

let rds: RDSClient | undefined;

export function handler(event: ActivityStreamEvent) {
  rds ??= new RDSClient({});
  return controlActivityStream(event, { rds });
}
