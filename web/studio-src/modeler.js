// The studio's BPMN modeler (issue 11): bpmn-js Modeler with palette, context pad, keyboard, the properties
// panel extended for Procflow (modeler/ProcflowPropertiesProvider.jsx), in-editor lint, and the toolbar
// (save, validate, deploy with a diff, try, export). Mounted on #studio-modeler; nothing runs inline.
import "./modeler.css";
import BpmnModeler from "bpmn-js/lib/Modeler";
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from "bpmn-js-properties-panel";
import { lintModule, linting } from "./lint/index.js";
import spiffworkflow from "./modeler/spiffworkflow.json";
import ProcflowPropertiesProvider from "./modeler/ProcflowPropertiesProvider.jsx";
import { translateModule } from "./modeler/translate.js";
import { ProblemPins } from "./modeler/problems.js";
import { DeployDialog } from "./modeler/deploy.js";
import { restoreUnresolvedReferences } from "./modeler/references.js";
import { layoutProcess } from "bpmn-auto-layout";

const root = document.getElementById("studio-modeler");

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content || "";
}

async function request(method, url, body, headers = {}) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: {
      "X-CSRFToken": csrfToken(),
      ...(body === undefined ? {} : { "Content-Type": "text/plain; charset=utf-8" }),
      ...headers,
    },
    body,
  });
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  return { ok: response.ok, status: response.status, data };
}

function errorText(result) {
  if (result.data && typeof result.data === "object") {
    return result.data.detail || result.data.message || result.data.error || (result.data.problems || []).map((p) => p.message).join("; ") || `HTTP ${result.status}`;
  }
  return `HTTP ${result.status}`;
}

// Fit the diagram into the canvas, but a long process at a readable scale from its start rather than all of
// it too small to read.
function showDiagram(canvas) {
  const fitted = canvas.zoom("fit-viewport", "auto");
  if (fitted >= 0.6) {
    return;
  }
  const { inner, outer } = canvas.viewbox();
  const scale = 0.75;
  canvas.viewbox({ x: inner.x - 20, y: inner.y - 20, width: outer.width / scale, height: outer.height / scale });
}

async function start() {
  const strings = JSON.parse(document.getElementById("modeler-strings").textContent);
  const urls = JSON.parse(root.dataset.urls);
  const translate = translateModule(strings).translate[1];
  const status = root.querySelector("[data-status]");
  const saveButton = root.querySelector('[data-action="save"]');
  const contextResult = await request("GET", urls.context);
  const context = contextResult.ok
    ? contextResult.data
    : { processId: root.dataset.processId, groups: [], connectors: [], forms: [], decisions: [], processes: [] };

  const additionalModules = [
    BpmnPropertiesPanelModule,
    BpmnPropertiesProviderModule,
    { __init__: ["procflowPropertiesProvider"], procflowPropertiesProvider: ["type", ProcflowPropertiesProvider] },
    { procflowContext: ["value", context] },
    translateModule(strings),
    lintModule,
  ];
  const options = {
    container: root.querySelector("[data-canvas]"),
    propertiesPanel: { parent: root.querySelector("[data-panel]") },
    moddleExtensions: { spiffworkflow },
    additionalModules,
    linting: { bpmnlint: linting, active: true },
  };
  const modeler = new BpmnModeler(options);
  window.procflowModeler = modeler; // for the browser tests and the console

  // Files: the XML of every BPMN file opened and changed, saved together.
  let current = root.dataset.file;
  const edited = new Map();
  const dirty = new Set();
  // The draft version the files were read at: a save by someone else in between is a conflict (409).
  let draftVersion = null;
  const listing = await request("GET", urls.files);
  if (listing.ok && listing.data.draft_version != null) {
    draftVersion = listing.data.draft_version;
  }

  function setStatus(text, kind = "") {
    status.textContent = text;
    status.dataset.kind = kind;
  }

  const readOnly = root.dataset.readOnly === "true";

  function markDirty() {
    dirty.add(current);
    saveButton.disabled = readOnly;
    setStatus(translate("Unsaved changes"));
  }

  const problems = new ProblemPins({
    modeler,
    list: root.querySelector("[data-problem-list]"),
    section: root.querySelector("[data-problems]"),
    translate,
    urls,
    currentFile: () => current,
    openFile: (name) => openFile(name),
  });

  async function openFile(name) {
    if (current && dirty.has(current)) {
      edited.set(current, (await modeler.saveXML({ format: true })).xml);
    }
    let xml = edited.get(name);
    if (xml === undefined) {
      const result = await request("GET", urls.file + name);
      if (!result.ok) {
        setStatus(translate("Could not load %(file)s: %(message)s", { file: name, message: errorText(result) }), "error");
        return;
      }
      xml = result.data;
    }
    current = name;
    // A model written without a layout (by hand, or by a tool that writes none) is laid out here, so
    // that it can be seen and edited at all; saving keeps the layout.
    const laidOut = !/BPMNDiagram\b/.test(xml);
    if (laidOut) {
      try {
        xml = await layoutProcess(xml);
      } catch (error) {
        setStatus(translate("Could not load %(file)s: %(message)s", { file: name, message: String(error) }), "error");
        return;
      }
    }
    const { warnings } = await modeler.importXML(xml);
    restoreUnresolvedReferences(modeler.get("moddle"), warnings);
    showDiagram(modeler.get("canvas"));
    if (laidOut && !readOnly) {
      markDirty();
      setStatus(translate("The diagram had no layout: Procflow laid it out. Save to keep it."));
    }
    for (const link of root.querySelectorAll("[data-open-bpmn]")) {
      link.toggleAttribute("aria-current", link.dataset.openBpmn === name);
    }
    problems.pin();
    root.dataset.loaded = name;
  }

  async function save() {
    if (dirty.has(current)) {
      edited.set(current, (await modeler.saveXML({ format: true })).xml);
    }
    setStatus(translate("Saving…"));
    for (const name of [...dirty]) {
      const ifMatch = draftVersion == null ? {} : { "If-Match": `"${draftVersion}"` };
      const result = await request("PUT", urls.file + name, edited.get(name), ifMatch);
      if (!result.ok) {
        if (result.data?.problems) {
          problems.show(result.data.problems);
        }
        setStatus(translate("Could not save %(file)s: %(message)s", { file: name, message: errorText(result) }), "error");
        return false;
      }
      draftVersion = result.data.draft_version ?? draftVersion;
      dirty.delete(name);
      edited.delete(name);
    }
    saveButton.disabled = true;
    setStatus(translate("Saved"), "ok");
    return true;
  }

  async function validate() {
    if (dirty.size && !(await save())) {
      return null;
    }
    setStatus(translate("Validating…"));
    const result = await request("POST", urls.validate);
    if (!result.ok) {
      setStatus(translate("The request failed: %(message)s", { message: errorText(result) }), "error");
      return null;
    }
    const found = result.data.problems || [];
    problems.show(found);
    setStatus(found.length ? translate("Problems: %(count)s", { count: found.length }) : translate("No problems found"), found.length ? "error" : "ok");
    return found;
  }

  const deployDialog = new DeployDialog({
    dialog: root.querySelector("[data-deploy-dialog]"),
    modeler,
    translate,
    urls,
    request,
    currentFile: () => current,
    spiffworkflow,
    onProblems: (found) => problems.show(found),
    setStatus,
    errorText,
  });

  root.querySelector('[data-action="save"]').addEventListener("click", () => save());
  root.querySelector('[data-action="validate"]').addEventListener("click", () => validate());
  root.querySelector('[data-action="deploy"]').addEventListener("click", async () => {
    if (dirty.size && !(await save())) {
      return;
    }
    deployDialog.open();
  });
  root.querySelector('[data-action="try"]').addEventListener("click", async () => {
    if (dirty.size && !(await save())) {
      return;
    }
    const result = await request("POST", urls.try);
    if (result.ok && result.data.instance_url) {
      window.location.assign(result.data.instance_url);
    } else {
      if (result.data?.problems) {
        problems.show(result.data.problems);
      }
      setStatus(translate("The request failed: %(message)s", { message: errorText(result) }), "error");
    }
  });
  for (const link of root.querySelectorAll("[data-open-bpmn]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      openFile(link.dataset.openBpmn);
    });
  }
  modeler.on("commandStack.changed", markDirty);
  window.addEventListener("beforeunload", (event) => {
    if (dirty.size) {
      event.preventDefault();
    }
  });

  await openFile(current);
  // Importing does not count as a change.
  dirty.clear();
  saveButton.disabled = true;
  setStatus("");
  root.dataset.ready = "true";
}

if (root) {
  start().catch((error) => {
    const status = root.querySelector("[data-status]");
    status.textContent = String(error && error.message ? error.message : error);
    status.dataset.kind = "error";
  });
}
