/** The flame-node profile is chosen from FLAME's environment only, and leaves the other profiles alone. */
import { configFromEnv, flameNodeFromEnv, resolveConfig } from '../../src/config.js';

const FLAME_ENV = { ANALYSIS_ID: 'an-1', PROJECT_ID: 'proj-1', KEYCLOAK_TOKEN: 'kc.token.x', DATA_SOURCE_TOKEN: 'ds', DEPLOYMENT_NAME: 'analysis-an-1-0' };

describe('flame-node profile from the environment', () => {
  it("is chosen by FLAME's variables, with nginx-<DEPLOYMENT_NAME> and port 8000", () => {
    expect(flameNodeFromEnv(FLAME_ENV)).toEqual({
      type: 'flame-node',
      nginxUrl: 'http://nginx-analysis-an-1-0',
      analysisUrl: 'http://nginx-analysis-an-1-0/analysis',
      port: 8000,
      keycloakToken: 'kc.token.x',
      dataSourceToken: 'ds',
    });
    const cfg = resolveConfig({}, FLAME_ENV);
    expect(cfg.broker.type).toBe('flame-node');
    expect(cfg.analysisId).toBe('an-1');
    expect(cfg.projectId).toBe('proj-1');
  });

  it('takes overrides for the nginx URL, the pod URL and the port', () => {
    const b = flameNodeFromEnv({ ...FLAME_ENV, FLAME_NODE_NGINX_URL: 'http://127.0.0.1:9/', FLAME_NODE_ANALYSIS_URL: 'http://127.0.0.1:7', FLAME_NODE_PORT: '7' });
    expect(b).toMatchObject({ nginxUrl: 'http://127.0.0.1:9', analysisUrl: 'http://127.0.0.1:7', port: 7 });
  });

  it('is not chosen without the Keycloak token or the deployment, nor when NATS is asked for', () => {
    const { KEYCLOAK_TOKEN: _k, ...noToken } = FLAME_ENV;
    expect(flameNodeFromEnv(noToken)).toBeUndefined();
    const { DEPLOYMENT_NAME: _d, ...noDeployment } = FLAME_ENV;
    expect(flameNodeFromEnv(noDeployment)).toBeUndefined();
    expect(configFromEnv({ ...FLAME_ENV, FLAME_NATS_URL: 'nats://x:4222' }).broker).toMatchObject({ type: 'nats', servers: ['nats://x:4222'] });
    expect(resolveConfig({}, {}).broker.type).toBe('memory');
    // FLAME_* ids win over FLAME's own.
    expect(resolveConfig({}, { ...FLAME_ENV, FLAME_ANALYSIS_ID: 'mine' }).analysisId).toBe('mine');
  });

  it('refuses a malformed flame-node config naming the field', () => {
    expect(() => resolveConfig({ broker: { type: 'flame-node', nginxUrl: 'nginx', analysisUrl: 'http://x', port: 8000, keycloakToken: 't' } }, {})).toThrow(/broker\.nginxUrl/);
    expect(() => resolveConfig({ broker: { type: 'flame-node', nginxUrl: 'http://n', analysisUrl: 'http://x', port: 70000, keycloakToken: 't' } }, {})).toThrow(/broker\.port/);
  });
});
