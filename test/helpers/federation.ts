/**
 * A federation's keys for tests: `writeLocalRoster` of `flame-sdk/testing` under the name the tests
 * have always used.
 */
export { writeLocalRoster as makeFederation, type LocalRosterFiles as TestFederation } from '../../src/testing/federation-keys.js';
