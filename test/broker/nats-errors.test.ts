/**
 * src/broker/nats/errors.ts classifies NATS failures by the codes nats.js gives. Each mapped code
 * is provoked on a private nats-server (wrong login, denied subject, no responders, a silent
 * responder, JetStream API errors); JetStream's "temporarily unavailable" answers, which a
 * healthy server does not give, are built the way nats.js builds them from an API reply.
 */
import { jest } from '@jest/globals';
import { AckPolicy, connect, Empty, ErrorCode, NatsError, type NatsConnection } from 'nats';
import { NatsBrokerAdapter } from '../../src/broker/nats/index.js';
import {
  isTransient,
  jsErrorCode,
  JS_CONSUMER_EXISTS,
  JS_CONSUMER_NAME_IN_USE,
  JS_CONSUMER_NOT_FOUND,
  JS_STREAM_NAME_IN_USE,
  JS_STREAM_NOT_FOUND,
  toFlameError,
} from '../../src/broker/nats/errors.js';
import { InternalError, TimeoutError, UnauthorizedError } from '../../src/errors.js';
import { freePort, startNatsServer, type TestNatsServer } from '../helpers/nats.js';

jest.setTimeout(30_000);

let server: TestNatsServer;
let admin: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer({
    config: `authorization {
      users = [
        { user: admin, password: "admin-pw" }
        { user: limited, password: "limited-pw", permissions: { publish: { allow: ["_INBOX.>", "ok.>"] }, subscribe: { allow: ["_INBOX.>", "ok.>"] } } }
      ]
    }`,
  });
  admin = await connect({ servers: server.url, user: 'admin', pass: 'admin-pw' });
});
afterAll(async () => {
  await admin?.close();
  await server?.stop();
});

async function failure(p: Promise<unknown>): Promise<NatsError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(NatsError);
  return e as NatsError;
}

test('a wrong password: AUTHORIZATION_VIOLATION → UnauthorizedError, also from the adapter', async () => {
  const e = await failure(connect({ servers: server.url, user: 'admin', pass: 'wrong', reconnect: false }));
  expect(e.code).toBe(ErrorCode.AuthorizationViolation);
  expect(toFlameError('login', e)).toBeInstanceOf(UnauthorizedError);
  expect(isTransient(e)).toBe(false);
  await expect(NatsBrokerAdapter.connect({ servers: [server.url], analysisId: 'errs', user: 'admin', pass: 'wrong' })).rejects.toThrow(UnauthorizedError);
});

test('a subject the login may not subscribe to: PERMISSIONS_VIOLATION → UnauthorizedError', async () => {
  const limited = await connect({ servers: server.url, user: 'limited', pass: 'limited-pw' });
  try {
    const sub = limited.subscribe('denied.x');
    const e = await failure((async () => {
      for await (const m of sub) void m;
    })());
    expect(e.code).toBe(ErrorCode.PermissionsViolation);
    expect(toFlameError('subscribe', e)).toBeInstanceOf(UnauthorizedError);
  } finally {
    await limited.close();
  }
});

test('no responders (503) and a responder that stays silent (TIMEOUT) are transient → TimeoutError', async () => {
  const none = await failure(admin.request('nobody.home', Empty, { timeout: 2000 }));
  expect(none.code).toBe(ErrorCode.NoResponders);
  expect(isTransient(none)).toBe(true);
  expect(toFlameError('request', none)).toBeInstanceOf(TimeoutError);
  const silent = admin.subscribe('silent.x');
  try {
    const late = await failure(admin.request('silent.x', Empty, { timeout: 200 }));
    expect(late.code).toBe(ErrorCode.Timeout);
    expect(isTransient(late)).toBe(true);
    expect(toFlameError('request', late)).toMatchObject({ kind: 'timeout', message: expect.stringMatching(/^request: /) });
  } finally {
    silent.unsubscribe();
  }
});

test('a server that is not there: CONNECTION_REFUSED → InternalError, not transient', async () => {
  const e = await failure(connect({ servers: `nats://127.0.0.1:${await freePort()}`, reconnect: false, timeout: 2000 }));
  expect(e.code).toBe(ErrorCode.ConnectionRefused);
  expect(isTransient(e)).toBe(false);
  expect(toFlameError('connect', e)).toBeInstanceOf(InternalError);
});

test('JetStream API errors carry err_code: stream and consumer not found, name in use, consumer exists', async () => {
  const jsm = await admin.jetstreamManager();
  const missing = await failure(jsm.streams.info('NO_SUCH_STREAM'));
  expect(jsErrorCode(missing)).toBe(JS_STREAM_NOT_FOUND);
  expect(isTransient(missing)).toBe(false);
  expect(toFlameError('info', missing)).toBeInstanceOf(InternalError);

  await jsm.streams.add({ name: 'ERRS', subjects: ['errs.>'] });
  const inUse = await failure(jsm.streams.add({ name: 'ERRS', subjects: ['other.>'] }));
  expect(jsErrorCode(inUse)).toBe(JS_STREAM_NAME_IN_USE);

  expect(jsErrorCode(await failure(jsm.consumers.info('ERRS', 'nobody')))).toBe(JS_CONSUMER_NOT_FOUND);
  await jsm.consumers.add('ERRS', { durable_name: 'd', ack_policy: AckPolicy.Explicit, filter_subject: 'errs.a' });
  // the ack policy of a consumer cannot be changed: adding it again with another one is refused
  // (10012, consumer create error), which is not the adapter's "made in between" (10105, 10013)
  const clash = await failure(jsm.consumers.add('ERRS', { durable_name: 'd', ack_policy: AckPolicy.None, filter_subject: 'errs.a' }));
  expect(jsErrorCode(clash)).toBe(10012);
  expect([JS_CONSUMER_EXISTS, JS_CONSUMER_NAME_IN_USE]).not.toContain(jsErrorCode(clash));
  expect(toFlameError('add consumer', clash)).toBeInstanceOf(InternalError);
});

test('JetStream answers a healthy server gives only in a race or a recovery are classified by err_code', () => {
  // a consumer made by another start at the same moment (nats-server answers 400 with these codes)
  for (const errCode of [JS_CONSUMER_EXISTS, JS_CONSUMER_NAME_IN_USE]) {
    const e = new NatsError('consumer already exists', '400');
    e.api_error = { code: 400, err_code: errCode, description: 'consumer already exists' };
    expect(jsErrorCode(e)).toBe(errCode);
    expect(isTransient(e)).toBe(false);
  }
  for (const errCode of [10008, 10005, 10023]) {
    // as nats.js' parseJsResponse builds it: checkJsErrorCode(503) plus the reply's error as api_error
    const e = new NatsError('jetstream system temporarily unavailable', ErrorCode.JetStreamNotEnabled);
    e.api_error = { code: 503, err_code: errCode, description: 'jetstream system temporarily unavailable' };
    expect(jsErrorCode(e)).toBe(errCode);
    expect(isTransient(e)).toBe(true);
    expect(toFlameError('api', e)).toBeInstanceOf(TimeoutError);
  }
  for (const code of [ErrorCode.Disconnect, ErrorCode.JetStream408RequestTimeout]) {
    expect(toFlameError('x', NatsError.errorForCode(code))).toBeInstanceOf(TimeoutError);
  }
  for (const code of [ErrorCode.AuthenticationExpired, ErrorCode.AccountExpired, ErrorCode.BadAuthentication]) {
    expect(toFlameError('x', NatsError.errorForCode(code))).toBeInstanceOf(UnauthorizedError);
  }
  // a code this module does not know stays internal, keeping the client's message
  expect(toFlameError('x', NatsError.errorForCode(ErrorCode.BadSubject))).toMatchObject({ kind: 'internal', message: 'x: BAD_SUBJECT' });
});
