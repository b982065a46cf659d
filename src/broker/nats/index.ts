/** The NATS JetStream broker: adapter, provisioning, names, per-node permissions. */
export { NatsBrokerAdapter } from './adapter.js';
export { NATS_HEADER_MARGIN, type NatsBrokerOptions } from './connection.js';
export { type NatsAdapterStats } from './consumers.js';
export { inboxStreamConfig, kvStreamConfig, provisionAnalysis, verifyAnalysis, type ProvisionOptions } from './provision.js';
export { analysisNames, natsToken, fromNatsToken, type AnalysisNames } from './names.js';
export { natsAuthorizationConfig, natsNodePermissions, type NatsNodeLogin, type NatsNodeRole, type NatsUserPermissions } from './permissions.js';
