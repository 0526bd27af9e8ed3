export * from './schema';
export * from './change-history';
export * from './errors';
export * from './load';
export * from './access-audit';
export * from './deployment';
export * from './activity-stream';
export * from './source-context';
