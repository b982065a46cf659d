/**
 * What a FLAME node's pod orchestrator (PrivateAIM/node-pod-orchestration) asks of the analysis pod,
 * on the pod's server: `GET /healthz` → `{status, token_remaining_time}` (always 200: the
 * orchestrator counts any error answer, and any status but executing, executed and stuck, as
 * failed), `POST /token_refresh {token}` (it sends a fresh Keycloak token when the reported time
 * runs low; requests under way finish with the old one), and `POST /partner_status
 * {partner_status: {node: status}}` (the other nodes' statuses; answered with our own).
 */
import { BadRequestError } from '../errors.js';
import type { NodeRunStatus } from '../health.js';
import type { Logger } from '../logger.js';
import { isObject } from '../validation.js';
import { parseJsonObject, type AnalysisServer } from './analysis-server.js';
import type { TokenHolder } from './token.js';

/** The statuses the orchestrator understands from `/healthz`. */
export type OrchestratorStatus = 'executing' | 'executed' | 'failed' | 'stuck';

/** Our run status in the orchestrator's words: a node still starting is executing (else it would count as failed). */
export function orchestratorStatus(status: NodeRunStatus): OrchestratorStatus {
  return status === 'starting' ? 'executing' : status;
}

/** Options of {@link mountLifecycle}. */
export interface LifecycleOptions {
  /** The pod's server. */
  server: AnalysisServer;
  /** The token `/token_refresh` replaces. */
  token: TokenHolder;
  /** This node's run status now. */
  status: () => NodeRunStatus;
  /** Told of the partners' statuses from each `/partner_status` call. */
  onPartnerStatus?: (statuses: Record<string, string>) => void;
  /** Where token swaps are logged. */
  logger?: Logger;
}

const STATUS_WORD = /^[a-z_]{1,32}$/;

/** Registers `/healthz`, `/token_refresh` and `/partner_status` on the pod's server. */
export function mountLifecycle(options: LifecycleOptions): void {
  const { server, token } = options;
  server.route('GET', '/healthz', 0, () => ({
    status: 200,
    json: { status: orchestratorStatus(options.status()), token_remaining_time: token.remainingSeconds() },
  }));
  server.route('POST', '/token_refresh', 64 * 1024, (body) => {
    const fresh = parseJsonObject(body, 'token_refresh').token;
    if (typeof fresh !== 'string' || fresh === '') throw new BadRequestError('token_refresh: body must be {"token": "<keycloak token>"}');
    token.set(fresh);
    options.logger?.info('keycloak token refreshed', { token_remaining_time: token.remainingSeconds() });
    return { status: 200, json: { message: 'Token refreshed successfully' } };
  });
  server.route('POST', '/partner_status', 256 * 1024, (body) => {
    const raw = parseJsonObject(body, 'partner_status').partner_status;
    if (!isObject(raw)) throw new BadRequestError('partner_status: body must be {"partner_status": {node: status}}');
    const statuses: Record<string, string> = {};
    for (const [node, s] of Object.entries(raw).slice(0, 10_000)) {
      if (typeof s === 'string' && STATUS_WORD.test(s) && node.length <= 128) statuses[node] = s;
    }
    options.onPartnerStatus?.(statuses);
    return { status: 200, json: { status: orchestratorStatus(options.status()) } };
  });
}
