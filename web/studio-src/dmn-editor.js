// The studio's decision table editor (dmn-js Modeler); mounted on #dmn-editor. Nothing runs inline.
//
// The page (templates/studio/decision.html) gives, on #dmn-editor:
//   data-file-url   GET: the DMN XML of the file (its ETag, the draft version, goes back as If-Match)
//   data-save-url   PUT: the edited XML (X-CSRFToken from <meta name="csrf-token">; 200 {"saved",
//                   "draft_version"}, 422 {"problems": [...]}, 409 changed meanwhile); without it, or
//                   with data-read-only="true", the table is shown read-only (dmn-js Viewer, no Save)
//   data-strings    optional JSON overriding the texts the editor shows (see STRINGS; English, Swedish
//                   and Finnish are built in and chosen by <html lang>)
// and inside it, optionally (created when missing): [data-dmn-views] (a list of the decisions, and the
// DRD when there are several), [data-dmn-canvas] (where dmn-js draws), [data-dmn-save] (the Save
// button) and [data-dmn-status] (what happened). Ctrl+S (Cmd+S) saves too.
// Events on #dmn-editor: procflow:dmn-loaded, procflow:dmn-changed, procflow:dmn-saved {detail: {xml,
// response}}, procflow:dmn-error {detail: {message, status, problems}}.
// window.procflowDmn = { modeler, getXML(), save() } for the page's other scripts and the tests.
import "./dmn-editor.css";
import DmnModeler from "dmn-js/lib/Modeler";
import DmnViewer from "dmn-js/lib/Viewer";

import { dmnTranslateModule } from "./dmn-translate.js";

const STRINGS = {
  en: {
    save: "Save",
    saving: "Saving…",
    saved: "Saved",
    unsaved: "Unsaved changes",
    saveFailed: "Could not save: {message}",
    loadFailed: "Could not load the decision table: {message}",
    views: "Decisions",
    drd: "Decision requirements diagram",
  },
  sv: {
    save: "Spara",
    saving: "Sparar…",
    saved: "Sparat",
    unsaved: "Osparade ändringar",
    saveFailed: "Kunde inte spara: {message}",
    loadFailed: "Kunde inte läsa in beslutstabellen: {message}",
    views: "Beslut",
    drd: "Diagram över beslutskrav",
  },
  fi: {
    save: "Tallenna",
    saving: "Tallennetaan…",
    saved: "Tallennettu",
    unsaved: "Tallentamattomia muutoksia",
    saveFailed: "Tallennus epäonnistui: {message}",
    loadFailed: "Päätöstaulukon lataus epäonnistui: {message}",
    views: "Päätökset",
    drd: "Päätösvaatimuskaavio",
  },
};

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

function pageLanguage() {
  return (document.documentElement.lang || "en").slice(0, 2).toLowerCase();
}

function readStrings(root) {
  const language = pageLanguage();
  const builtIn = STRINGS[language] || STRINGS.en;
  try {
    return { ...builtIn, ...JSON.parse(root.dataset.strings || "{}") };
  } catch {
    return builtIn;
  }
}

// dmn-js gives each view its own modules (the common options' additionalModules would be replaced).
function translatedViews() {
  const modules = { additionalModules: [dmnTranslateModule(pageLanguage())] };
  return { drd: modules, decisionTable: modules, literalExpression: modules, boxedExpression: modules };
}

function part(root, attribute, create) {
  let element = root.querySelector(`[${attribute}]`);
  if (!element) {
    element = create();
    element.setAttribute(attribute, "");
    root.append(element);
  }
  return element;
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") || "" : "";
}

async function failure(response) {
  const text = await response.text();
  try {
    const data = JSON.parse(text);
    const problems = Array.isArray(data.problems) ? data.problems : [];
    const message = data.message || data.detail || problems.map((problem) => problem.message).join("; ") || `HTTP ${response.status}`;
    return { message, status: response.status, problems };
  } catch {
    return { message: `HTTP ${response.status}`, status: response.status, problems: [] };
  }
}

class DmnEditor {
  constructor(root) {
    this.root = root;
    this.strings = readStrings(root);
    this.readOnly = root.dataset.readOnly === "true" || !root.dataset.saveUrl;
    this.dirty = false;
    this.draftVersion = null;
    this.views = part(root, "data-dmn-views", () => {
      const nav = document.createElement("nav");
      nav.setAttribute("aria-label", this.strings.views);
      return nav;
    });
    this.canvas = part(root, "data-dmn-canvas", () => document.createElement("div"));
    if (!this.readOnly) {
      this.saveButton = part(root, "data-dmn-save", () => {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = this.strings.save;
        return button;
      });
    }
    this.status = part(root, "data-dmn-status", () => {
      const status = document.createElement("p");
      status.setAttribute("role", "status");
      return status;
    });
    if (this.readOnly) {
      this.modeler = new DmnViewer({ container: this.canvas, ...translatedViews() });
      this.modeler.on("views.changed", () => this.showViews());
      return;
    }
    this.saveButton.disabled = true;
    this.modeler = new DmnModeler({ container: this.canvas, common: { keyboard: { bindTo: document } }, ...translatedViews() });
    this.modeler.on("viewer.created", ({ viewer }) => {
      viewer.on("commandStack.changed", (event) => {
        if (event.trigger !== "clear") {
          this.markDirty();
        }
      });
    });
    this.modeler.on("views.changed", () => this.showViews());
    this.saveButton.addEventListener("click", () => this.save());
    document.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "s") {
        event.preventDefault();
        this.save();
      }
    });
    window.addEventListener("beforeunload", (event) => {
      if (this.dirty) {
        event.preventDefault();
      }
    });
  }

  emit(name, detail) {
    this.root.dispatchEvent(new CustomEvent(name, { detail, bubbles: true }));
  }

  setStatus(text, kind = "") {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  fail(key, error) {
    this.setStatus(fill(this.strings[key], { message: error.message }), "error");
    this.emit("procflow:dmn-error", error);
  }

  markDirty() {
    this.dirty = true;
    this.saveButton.disabled = false;
    this.setStatus(this.strings.unsaved);
    this.emit("procflow:dmn-changed", {});
  }

  async load() {
    let xml;
    try {
      const response = await fetch(this.root.dataset.fileUrl, { credentials: "same-origin" });
      if (!response.ok) {
        throw await failure(response);
      }
      xml = await response.text();
      const etag = (response.headers.get("ETag") || "").replace(/^W\//, "").replace(/"/g, "");
      this.draftVersion = /^\d+$/.test(etag) ? etag : null;
      await this.modeler.importXML(xml, { open: false });
    } catch (error) {
      this.fail("loadFailed", { message: error.message, status: error.status || null, problems: error.problems || [] });
      return;
    }
    const views = this.modeler.getViews();
    const first = views.find((view) => view.type !== "drd");
    await this.modeler.open(first || views[0]);
    this.root.dataset.loaded = "true";
    this.emit("procflow:dmn-loaded", { views: views.map(({ id, name, type }) => ({ id, name, type })) });
  }

  showViews() {
    const views = this.modeler.getViews();
    const decisions = views.filter((view) => view.type !== "drd");
    const shown = decisions.length > 1 ? views : decisions;
    const active = this.modeler.getActiveView();
    const list = document.createElement("ul");
    for (const view of shown) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary outline";
      button.dataset.view = view.id;
      button.textContent = view.type === "drd" ? this.strings.drd : view.name || view.id;
      if (active && active.id === view.id) {
        button.setAttribute("aria-current", "true");
      }
      button.addEventListener("click", () => this.modeler.open(view));
      item.append(button);
      list.append(item);
    }
    this.views.replaceChildren(...(shown.length > 1 ? [list] : []));
  }

  async getXML() {
    const { xml } = await this.modeler.saveXML({ format: true });
    return xml;
  }

  async save() {
    if (this.readOnly) {
      return false;
    }
    if (this.saving) {
      return this.saving;
    }
    this.saving = this._save().finally(() => {
      this.saving = null;
    });
    return this.saving;
  }

  async _save() {
    this.setStatus(this.strings.saving);
    let xml;
    try {
      xml = await this.getXML();
      const response = await fetch(this.root.dataset.saveUrl, {
        method: "PUT",
        credentials: "same-origin",
        headers: {
          "Content-Type": "text/plain; charset=utf-8",
          "X-CSRFToken": csrfToken(),
          ...(this.draftVersion ? { "If-Match": `"${this.draftVersion}"` } : {}),
        },
        body: xml,
      });
      if (!response.ok) {
        throw await failure(response);
      }
      const answer = await response.json().catch(() => ({}));
      if (Number.isInteger(answer.draft_version)) {
        this.draftVersion = String(answer.draft_version);
      }
      this.dirty = false;
      this.saveButton.disabled = true;
      this.setStatus(this.strings.saved, "ok");
      this.emit("procflow:dmn-saved", { xml, response: answer });
      return true;
    } catch (error) {
      this.fail("saveFailed", { message: error.message, status: error.status || null, problems: error.problems || [] });
      return false;
    }
  }
}

const root = document.getElementById("dmn-editor");
if (root) {
  const editor = new DmnEditor(root);
  window.procflowDmn = {
    modeler: editor.modeler,
    getXML: () => editor.getXML(),
    save: () => editor.save(),
  };
  editor.load();
}
