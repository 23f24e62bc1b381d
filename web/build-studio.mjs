// Bundle the studio's editors (bpmn-js Modeler with its properties panel and lint, dmn-js) with esbuild
// into web/static/vendor/studio/. Run by web/copy-vendor-assets.mjs (npm ci) and by `make` when a source
// under web/studio-src/ changes. The output is generated and not committed.
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// Libraries that would put inline styles in the page, which the Content-Security-Policy refuses: their few
// lines are rewritten at bundling (each must still match, or the build fails and says which).
// - bpmn-js-properties-panel builds its two containers from HTML with style attributes (style-src-attr);
//   the same rules are in web/studio-src/modeler.css.
// - style-mod (CodeMirror's styles) adopts a constructed style sheet only in shadow roots and adds a <style>
//   element to documents (style-src-elem); documents adopt constructed sheets too.
const inlineStylePatches = [
  {
    file: /bpmn-js-properties-panel[\\/]dist[\\/]index\.esm\.js$/,
    replace: [
      ['<div style="height: 100%" tabindex="-1" class="', '<div tabindex="-1" class="'],
      ['<div style="flex: none; height: auto" class="', '<div class="'],
    ],
  },
  {
    file: /style-mod[\\/]src[\\/]style-mod\.js$/,
    replace: [["if (!root.head && root.adoptedStyleSheets && win.CSSStyleSheet) {", "if (root.adoptedStyleSheets && win.CSSStyleSheet) {"]],
  },
];
const withoutInlineStyles = {
  name: "without-inline-styles",
  setup(build) {
    for (const patch of inlineStylePatches) {
      build.onLoad({ filter: patch.file }, async (args) => {
        let source = await readFile(args.path, "utf8");
        for (const [from, to] of patch.replace) {
          if (!source.includes(from)) {
            throw new Error(`${args.path} changed: cannot remove its inline style (${from})`);
          }
          source = source.replace(from, to);
        }
        return { contents: source, loader: "js" };
      });
    }
  },
};

// dmn-js's HTML with style attributes (the bpmn.io logo it must show) goes through a domify that sets
// the same styles through the CSSOM (web/studio-src/dmn-editor-dom.js); dmn-js's files are not changed.
const dmnDom = join(root, "web", "studio-src", "dmn-editor-dom.js");
const dmnWithoutInlineStyles = {
  name: "dmn-without-inline-styles",
  setup(build) {
    build.onResolve({ filter: /^min-dom$/ }, (args) =>
      /[\\/]node_modules[\\/]dmn-js[^\\/]*[\\/]/.test(args.importer) ? { path: dmnDom } : undefined,
    );
  },
};

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
  plugins: [withoutInlineStyles, dmnWithoutInlineStyles],
});
console.log(`bundled ${Object.keys(entries).length} studio editors into web/static/vendor/studio/`);
