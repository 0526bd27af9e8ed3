/** The file looked for when no path is given. */
export const DEFAULT_CONFIG_FILE = 'audit-trail.config.json';
