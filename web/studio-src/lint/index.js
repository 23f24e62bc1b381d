// In-editor lint for the studio's BPMN modeler: bpmn-js-bpmnlint with Procflow's rules.
//
//   new Modeler({ additionalModules: [lintModule], linting: { bpmnlint: linting, active: true } })
//
// The page tells the rules about the organisation on the modeler's element (#modeler, or the nearest
// ancestor of the canvas that has one of these attributes):
//   data-groups      JSON array of the organisation's group keys (or of objects with a "key"); else the
//                    `groups` of a `procflowContext` service if the modeler has one; else unknown, and
//                    procflow/lane-group stays silent (setLintGroups() sets them later)
//   data-lint-url    POST /studio/<process_id>/lint/expressions; else built from data-process-id
// The CSRF token comes from <meta name="csrf-token">.
// Answers of the server's sandbox arrive after a lint; the diagram is linted again when they do.
import "bpmn-js-bpmnlint/dist/assets/css/bpmn-js-bpmnlint.css";
import "./lint.css";

import bpmnlintModule from "bpmn-js-bpmnlint";

import { setLintGroups } from "./context.js";
import { expressionChecks } from "./expression-checks.js";

export { linting } from "./config.js";
export { expressionChecks } from "./expression-checks.js";
export { setLintGroups } from "./context.js";

function readJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    console.warn("Procflow lint: data-groups is not JSON; lanes are not checked against groups");
    return null;
  }
}

function pageSettings(container) {
  const host = document.getElementById("modeler")
    || (container && container.closest("[data-groups],[data-lint-url],[data-process-id]"));
  const data = (host && host.dataset) || {};
  const processId = data.processId;
  const url = data.lintUrl || (processId ? `/studio/${encodeURIComponent(processId)}/lint/expressions` : null);
  const meta = document.querySelector('meta[name="csrf-token"]');
  return {
    groups: data.groups === undefined ? null : readJson(data.groups),
    url,
    csrfToken: meta ? meta.getAttribute("content") : null,
  };
}

function ProcflowLint(eventBus, linting, canvas, injector) {
  // The canvas is attached to the page only after the modules are made: read the page again on import.
  const configure = () => {
    const settings = pageSettings(canvas.getContainer());
    const context = injector.get("procflowContext", false);
    setLintGroups(settings.groups ?? (context && Array.isArray(context.groups) ? context.groups : null));
    expressionChecks.configure({ url: settings.url, csrfToken: settings.csrfToken });
  };
  configure();
  eventBus.on("import.done", 2000, configure);
  const stop = expressionChecks.onResults(() => {
    linting.update();
    eventBus.fire("procflow.lint.expressionsChecked");
  });
  eventBus.on("diagram.destroy", stop);
}

ProcflowLint.$inject = ["eventBus", "linting", "canvas", "injector"];

/** The didi module to add to the Modeler (it brings bpmn-js-bpmnlint along). */
export const lintModule = {
  __depends__: [bpmnlintModule],
  __init__: ["procflowLint"],
  procflowLint: ["type", ProcflowLint],
};
