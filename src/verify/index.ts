export { verifyAuditTrail } from './verify';
export type { VerifyMismatch, VerifyOptions, VerifyReport, VerifyTableReport } from './verify';
export type { ForeignDependency } from './foreign-dependencies';
