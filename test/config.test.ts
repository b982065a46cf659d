import { configFromEnv, resolveConfig } from '../src/config.js';
import { BadRequestError } from '../src/errors.js';

describe('config', () => {
  test('embedded defaults with nothing configured', () => {
    const c = resolveConfig({}, {});
    expect(c.nodeId).toBe('node-1');
    expect(c.broker.type).toBe('memory');
    expect(c.hub.type).toBe('fs');
    expect(c.local.type).toBe('fs');
    expect(c.participants).toEqual(['node-1']);
    expect(c.aggregatorId).toBe('node-1');
    expect(c.dataSources).toEqual([]);
  });

  test('reads FLAME_* environment variables', () => {
    const env = {
      FLAME_NODE_ID: 'a',
      FLAME_PARTICIPANTS: 'a, b ,agg',
      FLAME_AGGREGATOR_ID: 'agg',
      FLAME_NATS_URL: 'nats://h1:4222,nats://h2:4222',
      FLAME_NATS_TOKEN: 'secret',
      FLAME_HUB_S3_ENDPOINT: 'http://s3:9000',
      FLAME_HUB_S3_BUCKET: 'hub',
      FLAME_LOCAL_DIR: '/tmp/local',
      FLAME_DATA_SOURCES: '[{"id":"d","type":"folder","path":"/data"}]',
      FLAME_HEALTH_PORT: '8080',
    };
    const c = resolveConfig({}, env);
    expect(c.participants).toEqual(['a', 'b', 'agg']);
    expect(c.broker).toMatchObject({ type: 'nats', servers: ['nats://h1:4222', 'nats://h2:4222'], token: 'secret' });
    expect(c.hub).toMatchObject({ type: 's3', endpoint: 'http://s3:9000', bucket: 'hub', region: 'us-east-1' });
    expect(c.local).toEqual({ type: 'fs', dir: '/tmp/local' });
    expect(c.dataSources).toEqual([{ id: 'd', type: 'folder', path: '/data' }]);
    expect(c.healthPort).toBe(8080);
  });

  test('an options object overrides the environment', () => {
    const c = resolveConfig({ nodeId: 'x', participants: ['x', 'y'] }, { FLAME_NODE_ID: 'a' });
    expect(c.nodeId).toBe('x');
    expect(c.aggregatorId).toBe('y');
  });

  test.each([
    [{ nodeId: '../etc' }, /config nodeId: expected an id/],
    [{ nodeId: 'a', participants: ['b', 'c'] }, /config participants: must include this node "a"/],
    [{ nodeId: 'a', participants: ['a', 'a'] }, /config participants: contains a node id twice/],
    [{ nodeId: 'a', participants: ['a'], aggregatorId: 'z' }, /config aggregatorId: "z" is not one of the participants/],
    [{ broker: { type: 'kafka' } }, /config broker.type: expected "memory", "nats" or "flame-node", got "kafka"/],
    [{ broker: { type: 'nats', servers: [] } }, /config broker.servers/],
    [{ hub: { type: 's3', region: 'x' } }, /config hub.bucket: expected a bucket name/],
    [{ logLevel: 'loud' }, /config logLevel: expected one of/],
    [{ heartbeatMs: 3 }, /config heartbeatMs/],
    [{ dataSources: [{ id: 'f', type: 'fhir', baseUrl: 'not a url' }] }, /config dataSources\[0\].baseUrl: expected an http\(s\) URL/],
    [{ dataSources: [{ id: 'f', type: 'folder', path: '/a' }, { id: 'f', type: 'folder', path: '/b' }] }, /config dataSources\[1\].id: duplicate data source id "f"/],
    [{ dataSources: [{ id: 'f', type: 'ftp' }] }, /config dataSources\[0\].type: expected "fhir", "s3" or "folder"/],
  ])('rejects %j naming the field', (input, message) => {
    expect(() => resolveConfig(input as never, {})).toThrow(BadRequestError);
    expect(() => resolveConfig(input as never, {})).toThrow(message);
  });

  test('env errors name the variable', () => {
    expect(() => configFromEnv({ FLAME_DATA_SOURCES: '[oops' })).toThrow(/FLAME_DATA_SOURCES: not valid JSON/);
    expect(() => configFromEnv({ FLAME_HEALTH_PORT: 'eighty' })).toThrow(/FLAME_HEALTH_PORT: expected a whole number/);
    expect(() => configFromEnv({ FLAME_HUB_S3_ENDPOINT: 'http://x' })).toThrow(/FLAME_HUB_S3_BUCKET: required/);
  });
});
