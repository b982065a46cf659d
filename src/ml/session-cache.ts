/**
 * onnxruntime sessions built once per key and kept: building a session costs more than many runs
 * of it (the training step, the Gram and factorisation graphs).
 */
import * as ort from 'onnxruntime-node';

/** A cache of sessions by key, each built from the model bytes `build` returns on first use. */
export class SessionCache {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  /** The session of `key`, built from `build()` the first time. */
  get(key: string, build: () => Uint8Array): Promise<ort.InferenceSession> {
    let s = this.sessions.get(key);
    if (!s) {
      s = ort.InferenceSession.create(build());
      this.sessions.set(key, s);
    }
    return s;
  }

  /** Releases every cached session (a later `get` builds afresh). */
  async release(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s).release();
  }
}
