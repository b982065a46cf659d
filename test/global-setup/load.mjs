// jest loads globalSetup/globalTeardown outside its module system (no moduleNameMapper for the
// `.js` specifiers of the TypeScript sources), so they load shared-nats.ts through tsx.
import { tsImport } from 'tsx/esm/api';

/** The shared-nats.ts module. */
export const sharedNats = () => tsImport('./shared-nats.ts', import.meta.url);
