/**
 * Lambda entry point for the CloudWatch Logs subscription on the source cluster's
 * PostgreSQL log group. Settings are validated at cold start, so a bad deployment
 * fails loudly with the variable's name instead of dropping alerts.
 */
import { createHandler } from './handler';
import { loadSettings } from './settings';

export const handler = createHandler({ settings: loadSettings() });
