// Bundle the studio's editors (bpmn-js Modeler with its properties panel and lint, dmn-js) with esbuild
// into web/static/vendor/studio/. Run by web/copy-vendor-assets.mjs (npm ci) and by `make` when a source
// under web/studio-src/ changes. The output is generated and not committed.
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const entries = {
  modeler: "web/studio-src/modeler.js",
  "dmn-editor": "web/studio-src/dmn-editor.js",
};

await build({
  absWorkingDir: root,
  entryPoints: Object.fromEntries(Object.entries(entries).map(([name, file]) => [name, join(root, file)])),
  outdir: join(root, "web", "static", "vendor", "studio"),
  bundle: true,
  format: "iife",
  target: ["chrome110", "firefox110", "safari16"],
  minify: true,
  sourcemap: false,
  legalComments: "linked",
  loader: { ".svg": "dataurl", ".woff": "file", ".woff2": "file", ".ttf": "file", ".eot": "file" },
  jsx: "automatic",
  jsxImportSource: "@bpmn-io/properties-panel/preact",
  logLevel: "warning",
});
console.log(`bundled ${Object.keys(entries).length} studio editors into web/static/vendor/studio/`);
