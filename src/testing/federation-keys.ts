/**
 * A federation's keys for tests: each node's identity made in its own local folder, and the pinned
 * roster of their public keys written to a file (as an operator would hand it out), for nodes started
 * in this process (`trust`) or as child processes (`FLAME_ROSTER`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FsObjectStore } from '../results/fs.js';
import type { TrustConfig } from '../trust/peers.js';
import { localRoster } from '../trust/local-roster.js';
import type { Roster } from '../trust/roster.js';

/** Options of {@link writeLocalRoster}. */
export interface LocalRosterOptions {
  /** Folder the roster file is written to (`<dir>/roster.json`; created if missing). */
  dir: string;
  /** The analysis' id. */
  analysisId: string;
  /** Every node of the analysis, the aggregator included. */
  nodes: string[];
  /** The aggregator's id (one of `nodes`). */
  aggregatorId: string;
  /** Each node's local folder, where its identity is loaded or created (its `local` store). */
  localDir: (nodeId: string) => string;
  /** The project id the nodes use (default `local-project`). */
  projectId?: string;
}

/** What {@link writeLocalRoster} returns. */
export interface LocalRosterFiles {
  /** The pinned roster of every node's public keys. */
  roster: Roster;
  /** The roster's file. */
  rosterFile: string;
  /** Trust config for a node in this process. */
  trust: TrustConfig;
  /** Environment for a node process (`FLAME_ROSTER`). */
  env: Record<string, string>;
}

/**
 * Makes (or loads) every node's identity in `localDir(nodeId)` and writes the roster to
 * `<dir>/roster.json`.
 */
export async function writeLocalRoster(o: LocalRosterOptions): Promise<LocalRosterFiles> {
  const roster = await localRoster({
    projectId: o.projectId ?? 'local-project',
    analysisId: o.analysisId,
    aggregatorId: o.aggregatorId,
    nodes: o.nodes.map((nodeId) => ({ nodeId, local: new FsObjectStore(o.localDir(nodeId)) })),
  });
  await mkdir(o.dir, { recursive: true });
  const rosterFile = path.join(o.dir, 'roster.json');
  await writeFile(rosterFile, JSON.stringify(roster));
  return { roster, rosterFile, trust: { mode: 'roster', roster }, env: { FLAME_ROSTER: rosterFile } };
}
