export * from './install';
export * from './write-context';
export * from './prune';
