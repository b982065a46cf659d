// ESM + TypeScript through swc; tests run against real services (see README "Tests").
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'es6' } }],
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // One nats-server for the run, unless FLAME_TEST_NATS_URL names one (README "Tests").
  globalSetup: '<rootDir>/test/global-setup/setup.mjs',
  globalTeardown: '<rootDir>/test/global-setup/teardown.mjs',
  testTimeout: 30000,
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/helpers/summary-reporter.cjs'],
};
