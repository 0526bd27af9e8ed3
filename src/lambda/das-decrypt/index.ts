/**
 * Lambda entry point for the Database Activity Stream's Kinesis event source.
 * Settings are validated at cold start, so a bad deployment fails loudly.
 */
import { createDasHandler, loadDasSettings } from './handler';

export const handler = createDasHandler({ settings: loadDasSettings() });
