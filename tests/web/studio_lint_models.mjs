// Lint BPMN files with the studio modeler's lint configuration (web/studio-src/lint/), in Node.
//
//   node tests/web/studio_lint_models.mjs [--groups keys.json] [--answers answers.json] [--generic] FILE...
//
// The configuration is bundled by esbuild as for the browser and run by bpmnlint on the moddle tree
// bpmn-moddle reads, with the modeler's spiffworkflow descriptor (--generic: without it). The sandbox's
// answers for procflow/expression-refused come from --answers (what POST .../lint/expressions returned).
// Prints JSON: { "<file>": { "reports": [{ rule, id, message, category }], "codes": [{ element, kind, text }] } }.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(join(root, "package.json"));
const { build } = require("esbuild");
const { BpmnModdle } = require("bpmn-moddle");
const { Linter } = require("bpmnlint");
const traverse = require("bpmnlint/lib/traverse");

const args = process.argv.slice(2);
function option(name) {
  const index = args.indexOf(name);
  return index === -1 ? undefined : args.splice(index, 2)[1];
}
const groupsFile = option("--groups");
const answersFile = option("--answers");
const generic = args.includes("--generic");
const files = args.filter((arg) => arg !== "--generic");

const bundled = await build({
  stdin: {
    contents: [
      'export { linting } from "./config.js";',
      'export { codeOf } from "./expressions.js";',
      'export { setLintGroups } from "./context.js";',
      'export { expressionChecks } from "./expression-checks.js";',
    ].join("\n"),
    resolveDir: join(root, "web", "studio-src", "lint"),
  },
  absWorkingDir: root,
  bundle: true,
  platform: "node",
  format: "esm",
  write: false,
  logLevel: "error",
});
const modulePath = join(tmpdir(), `procflow-lint-${process.pid}.mjs`);
writeFileSync(modulePath, bundled.outputFiles[0].text);
const lint = await import(pathToFileURL(modulePath).href);
rmSync(modulePath);

lint.setLintGroups(groupsFile ? JSON.parse(readFileSync(groupsFile, "utf8")) : null);
if (answersFile) {
  lint.expressionChecks.record(JSON.parse(readFileSync(answersFile, "utf8")));
}
const spiffworkflow = JSON.parse(readFileSync(join(root, "web", "studio-src", "modeler", "spiffworkflow.json"), "utf8"));
const moddle = new BpmnModdle(generic ? {} : { spiffworkflow });

const output = {};
for (const file of files) {
  const { rootElement } = await moddle.fromXML(readFileSync(file, "utf8"));
  const codes = [];
  traverse(rootElement, { enter: (node) => { codes.push(...lint.codeOf(node)); } });
  const results = await new Linter(lint.linting).lint(rootElement);
  const reports = Object.entries(results).flatMap(([rule, found]) =>
    found.map(({ id, message, category }) => ({ rule, id, message, category })));
  output[file] = { reports, codes: codes.map(({ element, kind, text }) => ({ element, kind, text })) };
}
process.stdout.write(JSON.stringify(output));
