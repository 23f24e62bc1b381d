// Copy the browser assets the web app serves from node_modules into web/static/vendor/.
// Run by `npm ci` (postinstall); web/static/vendor/ is generated and not committed.
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const target = join(root, "web", "static", "vendor");
const assets = {
  "@picocss/pico/css/pico.min.css": "pico.min.css",
  "htmx.org/dist/htmx.min.js": "htmx.min.js",
  "bpmn-js/dist/bpmn-navigated-viewer.production.min.js": "bpmn-navigated-viewer.production.min.js",
  "bpmn-js/dist/assets/diagram-js.css": "diagram-js.css",
  "bpmn-js/dist/assets/bpmn-js.css": "bpmn-js.css",
  "bpmn-js/dist/assets/bpmn-font/css/bpmn.css": "bpmn-font/css/bpmn.css",
  "bpmn-js/dist/assets/bpmn-font/font": "bpmn-font/font",
  "chart.js/dist/chart.umd.min.js": "chart.umd.min.js",
  "swagger-ui-dist/swagger-ui-bundle.js": "swagger-ui/swagger-ui-bundle.js",
  "swagger-ui-dist/swagger-ui.css": "swagger-ui/swagger-ui.css",
};

rmSync(target, { recursive: true, force: true });
for (const [source, destination] of Object.entries(assets)) {
  const to = join(target, destination);
  mkdirSync(dirname(to), { recursive: true });
  cpSync(join(root, "node_modules", source), to, { recursive: true });
}
console.log(`copied ${Object.keys(assets).length} vendor assets to ${target}`);
await import("./build-studio.mjs");
