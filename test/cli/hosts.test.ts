/** `flame hosts`: the CPU as the OS reports it and execution providers probed with a real session. */
import os from 'node:os';
import { runCli } from './run-cli.js';

test('JSON: CPU and memory from the OS, cpu provider usable, an unknown provider explained', async () => {
  const run = await runCli(['--json', 'hosts', '--provider', 'cpu', 'no-such-ep']);
  expect(run.code).toBe(0);
  const host = JSON.parse(run.stdout) as {
    cpu: { cores: number; model: string };
    memory: { total_bytes: number };
    onnxruntime: string;
    providers: { name: string; usable: boolean; error?: string }[];
  };
  expect(host.cpu.cores).toBe(os.cpus().length);
  expect(host.cpu.model).toBe(os.cpus()[0].model.trim());
  expect(host.memory.total_bytes).toBe(os.totalmem());
  expect(host.onnxruntime).toMatch(/^\d+\.\d+\.\d+/);
  expect(host.providers).toEqual([
    { name: 'cpu', bundled: true, usable: true },
    { name: 'no-such-ep', bundled: false, usable: false, error: expect.stringMatching(/not compiled into this onnxruntime-node \(it has cpu/) },
  ]);
}, 30000);

test('table: one cpu row and one row per provider', async () => {
  const run = await runCli(['hosts', '--provider', 'cpu']);
  expect(run.code).toBe(0);
  const lines = run.stdout.split('\n');
  expect(lines[0]).toMatch(/^type\s+name\s+detail$/);
  expect(lines[2]).toMatch(new RegExp(`^cpu\\s+.+\\s+${os.cpus().length} cores`));
  expect(lines[3]).toMatch(/^provider\s+cpu\s+usable$/);
}, 30000);

test('probing every provider prints nothing native to the terminal (each probe runs in its own process)', async () => {
  const run = await runCli(['--json', 'hosts'], { NODE_NO_WARNINGS: '' });
  expect(run.code).toBe(0);
  const info = JSON.parse(run.stdout) as { providers: Array<{ name: string; usable: boolean; error?: string }> };
  expect(info.providers.find((p) => p.name === 'cpu')).toMatchObject({ usable: true });
  // e.g. Dawn's "Warning: Couldn't load Vulkan: libvulkan.so.1 …" when the webgpu provider is tried
  expect(run.stderr).toBe('');
}, 120_000);
