import type { Command } from 'commander';
import { registerMappings } from './mappings';

/**
 * Adds every subcommand to the program. One line per command module, so features
 * add their commands without touching each other.
 */
export function registerCommands(program: Command): void {
  void program;
  registerMappings(program);
}
