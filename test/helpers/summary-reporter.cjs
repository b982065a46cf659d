// Prints one plain closing line, "N passed, N failed, N skipped", that any CI log reader understands,
// and the slowest test files, so that a CI run creeping towards its time limit shows where.
const path = require('node:path');

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests: p, numFailedTests: f, numPendingTests: s, numTodoTests: t } = results;
    const slowest = results.testResults
      .map((r) => ({ file: path.relative(process.cwd(), r.testFilePath), s: (r.perfStats.end - r.perfStats.start) / 1000 }))
      .sort((a, b) => b.s - a.s)
      .slice(0, 12);
    if (slowest.length > 1) {
      process.stdout.write(`\nslowest test files:\n${slowest.map((x) => `  ${x.s.toFixed(1).padStart(6)} s  ${x.file}`).join('\n')}\n`);
    }
    process.stdout.write(`\ntests: ${p} passed, ${f} failed, ${s + t} skipped\n`);
  }
}
module.exports = SummaryReporter;
