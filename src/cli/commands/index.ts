import type { Command } from '@commander-js/extra-typings';
import { registerHistory } from './history';
import { registerMigrate } from './migrate';
import { registerMappings } from './mappings';
import { registerStatus } from './status';
import { registerTask } from './task';
import { registerReplicate } from './replicate';
import { registerVerify } from './verify';
import { registerAnchor } from './anchor';
import { registerGrant } from './grant';
import { registerDemo } from './demo';
import { registerPgaudit } from './pgaudit';
import { registerDas } from './das';
import { registerExport } from './export';
import { registerDoctor } from './doctor';
import { registerSlot } from './slot';
import { registerInit } from './init';
import { registerConfigSchema } from './config-schema';
import { registerReload } from './reload';

/**
 * Adds every subcommand to the program. One line per command module, so features
 * add their commands without touching each other.
 */
export function registerCommands(program: Command): void {
  registerMigrate(program);
  registerHistory(program);
  registerMappings(program);
  registerStatus(program);
  registerTask(program);
  registerReplicate(program);
  registerVerify(program);
  registerAnchor(program);
  registerGrant(program);
  registerDemo(program);
  registerPgaudit(program);
  registerDas(program);
  registerExport(program);
  registerDoctor(program);
  registerSlot(program);
  registerInit(program);
  registerConfigSchema(program);
  registerReload(program);
}
