/**
 * `flame-sdk/testing`: what an analysis author needs to test an analysis against real components —
 * a private nats-server, a federation's keys and pinned roster, and a whole federation of connected
 * nodes in one process to run `runStar` on.
 *
 * @module flame-sdk/testing
 */
export { startNatsServer, findNatsServer, freePort, NATS_SERVER_INSTALL_HINT, type NatsServerOptions, type NatsServerHandle } from './nats-server.js';
export { writeLocalRoster, type LocalRosterOptions, type LocalRosterFiles } from './federation-keys.js';
export { createLocalFederation, type LocalFederation, type LocalFederationOptions, type LocalFederationNode, type LocalFederationBroker } from './local-federation.js';
