/** Child of untrusted.test.ts: decodes one table through the worker and then just ends; the worker must not keep it alive. */
import { tableFromArrays, type Table } from 'apache-arrow';
import { decodeUntrusted, encodeValue } from '../../src/codec/index.js';

const bytes = encodeValue(tableFromArrays({ x: Int32Array.from([1, 2, 3]) }));
const table = (await decodeUntrusted(bytes, 'value', { maxBytes: 1 << 20, timeoutMs: 30_000, memoryBytes: 128 * 1024 * 1024 })) as Table;
console.log(`decoded ${table.numRows} rows`);
