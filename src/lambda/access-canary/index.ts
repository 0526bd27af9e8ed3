/**
 * Lambda entry point of the access-audit canary, invoked by an EventBridge schedule.
 * Settings are validated at cold start, naming the bad variable.
 */
import { createCanaryHandler, loadCanarySettings } from './handler';

export const handler = createCanaryHandler({ settings: loadCanarySettings() });
