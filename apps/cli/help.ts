/**
 * The `flame` help's shape: commands grouped by what a person comes to do, and an example under
 * every command (kept here, in one place, beside the groups).
 */
import type { Command } from 'commander';

/** Help headings, in order, and the top-level commands under each. */
const GROUPS: Array<[string, string[]]> = [
  ['Try it and analyse on this machine:', ['demo', 'diagnose', 'clean', 'report', 'check', 'metadata', 'simulate']],
  ['Run on a node of a federation:', ['run', 'nodes', 'results', 'datasets', 'hosts']],
  ['Set up a federation (operators):', ['keys', 'roster', 'analysis']],
  ['Write an analysis:', ['init']],
  ['Interfaces for other programs:', ['job', 'worker']],
];

/** One or two example command lines per command (full path), shown under its help; `own`: its module has one. */
const EXAMPLES: Record<string, string[] | 'own'> = {
  demo: ['flame demo --out out   # then open out/report.html'],
  diagnose: ['flame diagnose --request request.json --out response.json --report report.html', 'flame diagnose --folder images/ --write-request request.json --out response.json'],
  clean: ['flame clean --request cleaning.json --auto --apply cleaned/ --source dataset/'],
  report: ['flame report --result response.json --out report.html --root dataset/', 'flame report --result hub:3f2c… --out report.html   # a final result on the hub'],
  check: ['flame check response.json --reference truth.json', 'flame check hub:3f2c… --reference truth.json'],
  metadata: ['flame metadata scan.png --json'],
  'simulate run': ['flame simulate run dist/src/main.js --node hospital-a=data/node-a --node hospital-b=data/node-b'],
  'simulate diagnose': ['flame simulate diagnose --node a=hospital-a/ --node b=hospital-b/ --out response.json'],
  run: 'own',
  'nodes status': ['flame nodes status --timeout-ms 5000'],
  'results list': ['flame results list', 'flame results list --intermediate'],
  'results get': ['flame results get 3f2c…'],
  'results download': ['flame results download 3f2c… --out result.json'],
  'datasets upload': ['flame datasets upload images/ --name chest-xray   # run again to resume'],
  'datasets progress': ['flame datasets progress chest-xray'],
  'datasets list': ['flame datasets list'],
  'datasets get': ['flame datasets get chest-xray'],
  'datasets delete': ['flame datasets delete chest-xray'],
  hosts: ['flame hosts --provider cpu cuda'],
  'keys show': 'own',
  'keys rotate': ['flame keys rotate'],
  'keys operator': ['flame keys operator --out operator.key'],
  'roster sign': 'own',
  'roster show': ['flame roster show roster.json'],
  'roster publish': ['flame roster publish roster.json'],
  'analysis provision': ['flame analysis provision'],
  'analysis nats-config': ['flame analysis nats-config --nodes a,b,agg --aggregator agg --analysis study-7 > auth.conf'],
  init: ['flame init my-analysis && cd my-analysis && npm install && npm test'],
  'job diagnose': ['flame job diagnose --user 2b1c… --request request.json --out output.json'],
  'job clean': ['flame job clean --user 2b1c… --request cleaning.json --out output.json'],
  'job metadata': ['flame job metadata --user 2b1c… --request metadata.json'],
  worker: ['flame worker --model classifier.onnx --labels classifier.labels.txt'],
};

function fullName(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x && x.parent; x = x.parent) names.unshift(x.name());
  return names.join(' ');
}

function* walk(c: Command): Generator<Command> {
  for (const sub of c.commands) {
    if (sub.name() === 'help') continue;
    yield sub;
    yield* walk(sub);
  }
}

/** Groups the top-level commands, adds the examples, and lists the exit codes under the root help. */
export function shapeHelp(program: Command, exitCodes: Record<string, number>): void {
  for (const [heading, names] of GROUPS) {
    for (const name of names) program.commands.find((c) => c.name() === name)?.helpGroup(heading);
  }
  for (const c of walk(program)) {
    const examples = EXAMPLES[fullName(c)];
    if (examples && examples !== 'own') c.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
  }
  // The implicit `help` command comes last, under its own heading.
  program.commandsGroup('Help:').helpCommand(true);
  const codes = Object.entries(exitCodes).map(([kind, code]) => `${code} ${kind.replace('_', ' ')}`);
  program.addHelpText('after', `\nExit codes: 0 success, ${[...new Set(codes)].join(', ')}, 130 interrupted.\nEach command's --help has an example; docs/cli.md has the details.\n`);
}

/** Commands (full names) that have no example, for the test that keeps this file complete. */
export function commandsWithoutExamples(program: Command): string[] {
  return [...walk(program)].filter((c) => c.commands.length === 0 && !EXAMPLES[fullName(c)]).map(fullName);
}
