/**
 * Where a ResultService keeps results, over two ObjectStores:
 *
 *   hub    projects/<project>/analyses/<analysis>/intermediate/<id>   intermediate results of every node
 *   hub    projects/<project>/analyses/<analysis>/final/<id>          final results (aggregator only)
 *   hub    projects/<project>/analyses/<analysis>/signatures/<id>.json the aggregator's signature of each
 *   local  projects/<project>/local/<id>                              this node's results, kept across the
 *                                                                     project's analyses (seed 003: "for later
 *                                                                     analysis in the same project")
 */
import { signatureKey } from './signatures.js';

/** The keys of one analysis' results and of its project's local results. */
export class ResultKeys {
  /** `projects/<project>/analyses/<analysis>`: the prefix of everything on the hub. */
  readonly analysis: string;
  /** The folder listed for intermediate results. */
  readonly intermediateFolder: string;
  /** The folder listed for final results. */
  readonly finalFolder: string;
  /** The folder listed for local results (any analysis of the project). */
  readonly localFolder: string;

  constructor(projectId: string, analysisId: string) {
    this.analysis = `projects/${projectId}/analyses/${analysisId}`;
    this.intermediateFolder = `${this.analysis}/intermediate/`;
    this.finalFolder = `${this.analysis}/final/`;
    this.localFolder = `projects/${projectId}/local/`;
  }

  intermediate(id: string): string {
    return this.intermediateFolder + id;
  }

  final(id: string): string {
    return this.finalFolder + id;
  }

  local(id: string): string {
    return this.localFolder + id;
  }

  signature(id: string): string {
    return signatureKey(this.analysis, id);
  }
}
