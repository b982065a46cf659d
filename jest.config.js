// ESM + TypeScript through swc; tests run against real services (see README "Tests").
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'es6' } }],
  },
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // The package's own subpaths, as its flame-source condition names them (jest resolves no self-references).
    '^flame-sdk$': '<rootDir>/src/index.ts',
    '^flame-sdk/(images|ml|testing)$': '<rootDir>/src/$1/index.ts',
    '^flame-sdk/jobs$': '<rootDir>/apps/jobs/index.ts',
    '^flame-sdk/(image-diagnosis|image-cleaning)$': '<rootDir>/analyses/$1/index.ts',
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // One nats-server for the run, unless FLAME_TEST_NATS_URL names one (README "Tests").
  globalSetup: '<rootDir>/test/global-setup/setup.mjs',
  globalTeardown: '<rootDir>/test/global-setup/teardown.mjs',
  testTimeout: 30000,
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/helpers/summary-reporter.cjs'],
};
