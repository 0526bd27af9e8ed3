// The CDK custom-resource provider framework's side of every custom resource a kit
// function serves (migrations, logins, replication control, activity stream): one
// definition of what it passes to onEvent and isComplete and what onEvent returns.

/** The event the provider framework passes to onEvent (and isComplete); `P` the resource's properties. */
export interface CustomResourceEvent<P> {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly ResourceProperties: P & { readonly ServiceToken?: string };
  /** The properties before an `Update`. */
  readonly OldResourceProperties?: P;
  readonly PhysicalResourceId?: string;
}

/** What an onEvent handler returns to the provider framework. */
export interface OnEventResponse {
  readonly PhysicalResourceId: string;
  readonly Data?: Record<string, string>;
}
