/** Opens FLAME node broker adapters on the node-services double, each with its own pod server. */
import { AnalysisServer } from '../../src/flame-node/analysis-server.js';
import { FlameNodeBrokerAdapter, type FlameNodeBrokerOptions } from '../../src/flame-node/broker.js';
import { TokenHolder } from '../../src/flame-node/token.js';
import type { FlameNodeDouble } from '../helpers/flame-node-double.js';

/** One opened adapter with its server and token. */
export interface OpenedNode {
  adapter: FlameNodeBrokerAdapter;
  server: AnalysisServer;
  token: TokenHolder;
}

/** Opens an adapter for `nodeId` of the double's analysis (pod server on a free loopback port). */
export async function openFlameNodeBroker(
  double: FlameNodeDouble,
  nodeId: string,
  extra: Partial<FlameNodeBrokerOptions> = {},
): Promise<OpenedNode> {
  const server = new AnalysisServer({ port: 0, host: '127.0.0.1' });
  await server.listen();
  const token = new TokenHolder(double.token(nodeId));
  const adapter = new FlameNodeBrokerAdapter({
    brokerUrl: `${double.nginxUrl(nodeId)}/message-broker`,
    analysisId: double.options.analysisId,
    token,
    server,
    webhookUrl: `http://127.0.0.1:${server.port}/webhook`,
    ackTimeoutMs: 400,
    maxResendMs: 1500,
    announceWaitMs: 500,
    retry: { attempts: 4, baseDelayMs: 20, maxDelayMs: 200 },
    ...extra,
  });
  return { adapter, server, token };
}
