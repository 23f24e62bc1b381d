// A page of the browser test only (tests/web/test_studio_lint.py): a bpmn-js Modeler with nothing but the
// studio's lint module, as the studio's modeler adds it. The test builds it with esbuild and serves it.
import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";

import BpmnModeler from "bpmn-js/lib/Modeler";

import { lintModule, linting } from "../../web/studio-src/lint/index.js";
import spiffworkflow from "../../web/studio-src/modeler/spiffworkflow.json";

const root = document.getElementById("modeler");
const modeler = new BpmnModeler({
  container: root.querySelector("[data-canvas]"),
  moddleExtensions: { spiffworkflow },
  additionalModules: [lintModule],
  linting: { bpmnlint: linting, active: true },
});
window.lintPage = { modeler, issues: null };
modeler.on("linting.completed", ({ issues }) => {
  window.lintPage.issues = issues;
});
fetch(root.dataset.diagramUrl)
  .then((response) => response.text())
  .then((xml) => modeler.importXML(xml))
  .then(() => {
    root.dataset.loaded = "true";
  });
