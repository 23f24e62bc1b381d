// The deploy dialog: what changed against the version that runs now (bpmn-js-differ), how many running
// instances stay on their version, then deploy; problems are pinned like Validate's.
import { BpmnModdle } from "bpmn-moddle";
import { diff } from "bpmn-js-differ";
import { restoreUnresolvedReferences } from "./references.js";

function nameOf(element) {
  const type = (element.$type || "").replace(/^bpmn:/, "");
  return element.name ? `${element.name} (${type} ${element.id})` : `${type} ${element.id}`;
}

function isDiagramElement(element) {
  return element && element.$type && !/^bpmndi:|^dc:|^di:/.test(element.$type);
}

export class DeployDialog {
  constructor(options) {
    Object.assign(this, options);
    this.summary = this.dialog.querySelector("[data-deploy-summary]");
    this.dialog.querySelector('[data-action="deploy-cancel"]').addEventListener("click", () => this.dialog.close());
    this.dialog.querySelector('[data-action="deploy-confirm"]').addEventListener("click", () => this.confirm());
  }

  async open() {
    const preview = await this.request("GET", this.urls.deployPreview);
    if (!preview.ok) {
      this.setStatus(this.translate("The request failed: %(message)s", { message: this.errorText(preview) }), "error");
      return;
    }
    this.summary.replaceChildren();
    const { running, instances_staying: staying = {}, target } = preview.data;
    const target_text = document.createElement("p");
    target_text.textContent = this.translate(target === "shared" ? "Deploys as a shared version for every organisation" : "Deploys for this organisation");
    this.summary.appendChild(target_text);
    if (!running) {
      const first = document.createElement("p");
      first.textContent = this.translate("This will be the first version.");
      this.summary.appendChild(first);
    } else {
      await this.showDiff(running);
    }
    for (const [version, count] of Object.entries(staying)) {
      if (!count) {
        continue;
      }
      const line = document.createElement("p");
      line.dataset.staying = version;
      line.textContent = this.translate("Running instances that stay on version %(version)s: %(count)s", { count, version });
      this.summary.appendChild(line);
    }
    this.dialog.showModal();
  }

  runningFileUrl(running) {
    const files = running.files || {};
    const current = this.currentFile();
    if (files[current]) {
      return files[current];
    }
    const base = current.split("/").pop();
    const same = Object.keys(files).find((name) => name.split("/").pop() === base);
    return same ? files[same] : null;
  }

  async showDiff(running) {
    const url = this.runningFileUrl(running);
    const changes = { Added: [], Removed: [], Changed: [], "Layout changed": [] };
    if (url) {
      const old = await this.request("GET", url);
      if (old.ok) {
        const moddle = new BpmnModdle({ spiffworkflow: this.spiffworkflow });
        const { rootElement, warnings } = await moddle.fromXML(old.data, "bpmn:Definitions");
        restoreUnresolvedReferences(moddle, warnings);
        const result = diff(rootElement, this.modeler.getDefinitions());
        changes.Added = Object.values(result._added).filter(isDiagramElement).map(nameOf);
        changes.Removed = Object.values(result._removed).filter(isDiagramElement).map(nameOf);
        changes.Changed = Object.values(result._changed)
          .filter((c) => isDiagramElement(c.model))
          .map((c) => {
            const attributes = Object.keys(c.attrs);
            return attributes.length ? `${nameOf(c.model)}: ${attributes.join(", ")}` : nameOf(c.model);
          });
        changes["Layout changed"] = Object.values(result._layoutChanged).filter(isDiagramElement).map(nameOf);
      }
    }
    const any = Object.values(changes).some((list) => list.length);
    if (!any) {
      const nothing = document.createElement("p");
      nothing.textContent = this.translate("Nothing changed in the diagram");
      this.summary.appendChild(nothing);
    }
    for (const [heading, list] of Object.entries(changes)) {
      if (!list.length) {
        continue;
      }
      const section = document.createElement("section");
      section.dataset.changes = heading.toLowerCase().replace(/ /g, "-");
      const title = document.createElement("h3");
      title.textContent = `${this.translate(heading)} (${list.length})`;
      const items = document.createElement("ul");
      for (const text of list) {
        const item = document.createElement("li");
        item.textContent = text;
        items.appendChild(item);
      }
      section.append(title, items);
      this.summary.appendChild(section);
    }
  }

  async confirm() {
    const result = await this.request("POST", this.urls.deploy);
    this.dialog.close();
    if (result.ok) {
      const versions = (result.data.deployed || []).map((d) => d.version).join(", ");
      this.setStatus(this.translate("Deployed version %(version)s", { version: versions }), "ok");
      this.onProblems([]);
      return;
    }
    if (result.data?.problems) {
      this.onProblems(result.data.problems);
    }
    this.setStatus(this.translate("The request failed: %(message)s", { message: this.errorText(result) }), "error");
  }
}
