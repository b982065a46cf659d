/**
 * The quarantine folder: a message whose body could not be read is kept there, by sender, as its
 * envelope and the reason (`<id>.json`) and, within a byte budget, its payload (`<id>.bin`), for an
 * operator to look at. The inbox has already moved on; nothing here is read back.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { WireMessage } from '../broker/port.js';
import type { FlameError } from '../errors.js';
import type { Logger } from '../logger.js';

/** At most this much of quarantined payloads is kept on disk (their descriptions always are). */
const MAX_QUARANTINE_BYTES = 256 * 1024 * 1024;

/** Writes unreadable messages to one folder. */
export class QuarantineFolder {
  private bytes = 0;

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Keeps `wire` and why it could not be read; a write that fails is logged, never thrown. */
  keep(wire: WireMessage, error: FlameError, payload: Uint8Array): void {
    try {
      const dir = path.join(this.dir, wire.sender);
      fs.mkdirSync(dir, { recursive: true });
      const { body: _body, ...head } = wire;
      void _body;
      fs.writeFileSync(path.join(dir, `${wire.id}.json`), JSON.stringify({ ...head, error: { kind: error.kind, message: error.message }, at: new Date().toISOString() }, null, 2));
      if (this.bytes + payload.byteLength <= MAX_QUARANTINE_BYTES) {
        fs.writeFileSync(path.join(dir, `${wire.id}.bin`), payload);
        this.bytes += payload.byteLength;
      }
    } catch (e) {
      this.log.warn('could not write to the quarantine folder', { error: e });
    }
  }
}
