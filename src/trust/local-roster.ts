/**
 * A pinned roster for nodes whose local storage this process can reach (the simulator, tests, a
 * single machine running several node processes): each node's identity is loaded or created in its
 * own local storage, and the roster lists their public keys. Production rosters are signed by the
 * operator from the keys the nodes report (flame keys show, flame roster sign).
 */
import type { ObjectStore } from '../results/port.js';
import { loadOrCreateIdentity, publicKeySet } from './identity.js';
import { buildRoster, type Roster } from './roster.js';

/** One node of {@link localRoster}. */
export interface LocalNode {
  /** The node's id. */
  nodeId: string;
  /** Its local storage, where its identity is kept. */
  local: ObjectStore;
}

/** Loads or creates every node's identity and returns the roster of their public keys. */
export async function localRoster(o: { projectId: string; analysisId: string; aggregatorId: string; nodes: LocalNode[] }): Promise<Roster> {
  const nodes = await Promise.all(
    o.nodes.map(async (n) => {
      const id = await loadOrCreateIdentity({ local: n.local, projectId: o.projectId, analysisId: o.analysisId, nodeId: n.nodeId });
      return { node_id: n.nodeId, role: n.nodeId === o.aggregatorId ? ('aggregator' as const) : ('analyzer' as const), keys: id.keys.map(publicKeySet) };
    }),
  );
  return buildRoster(o.analysisId, nodes);
}
