export * from './record';
export * from './keys';
export * from './decrypt';
export * from './normalize';
export * from './decode';
export * from './input';
export * from './archive';
