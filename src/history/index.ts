export * from './types';
export * from './diff';
export * from './history';
