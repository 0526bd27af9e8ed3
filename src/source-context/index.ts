export * from './install';
export * from './write-context';
