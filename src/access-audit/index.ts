export * from './types';
export * from './prefix';
export * from './csv';
export * from './parser';
export * from './records';
export * from './noise';
export * from './rules';
export * from './stream';
