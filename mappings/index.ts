/**
 * DMS artefacts derived from the audit-trail config: the table mappings (selection,
 * rename to `<auditSchema>.<table>_staging`, header columns) and the task settings.
 * The CDK app, the `audit-trail mappings` command and the tests all use these builders.
 */
export * from './table-mappings';
export * from './task-settings';
