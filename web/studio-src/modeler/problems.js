// Problems of Validate and Deploy: listed beside the canvas and pinned on their elements (marker + overlay).
const MARKERS = { error: "studio-problem-error", warning: "studio-problem-warning" };

export class ProblemPins {
  constructor({ modeler, list, section, translate, urls, currentFile, openFile }) {
    this.modeler = modeler;
    this.list = list;
    this.section = section;
    this.translate = translate;
    this.urls = urls;
    this.currentFile = currentFile;
    this.openFile = openFile;
    this.problems = [];
    this.pinned = [];
  }

  /** Show *problems* (Problem.as_dict() of the server), replacing the earlier ones. */
  show(problems) {
    this.problems = problems || [];
    this.renderList();
    this.pin();
  }

  clear() {
    this.show([]);
  }

  /** Pin the problems of the file open in the canvas (again after a file is opened). */
  pin() {
    const canvas = this.modeler.get("canvas");
    const overlays = this.modeler.get("overlays");
    const registry = this.modeler.get("elementRegistry");
    for (const { id, marker } of this.pinned) {
      if (registry.get(id)) {
        canvas.removeMarker(id, marker);
      }
    }
    overlays.remove({ type: "studio-problem" });
    this.pinned = [];
    const byElement = new Map();
    for (const problem of this.problems) {
      if (!problem.element || !this.inCurrentFile(problem) || !registry.get(problem.element)) {
        continue;
      }
      const list = byElement.get(problem.element) || [];
      list.push(problem);
      byElement.set(problem.element, list);
    }
    for (const [id, problems] of byElement) {
      const severity = problems.some((p) => p.severity === "error") ? "error" : "warning";
      const marker = MARKERS[severity];
      canvas.addMarker(id, marker);
      this.pinned.push({ id, marker });
      const badge = document.createElement("div");
      badge.className = `studio-problem-badge studio-problem-badge-${severity}`;
      badge.dataset.problemFor = id;
      badge.textContent = problems.length > 1 ? `${problems.length} ⚠` : "⚠";
      badge.title = problems.map((p) => p.message).join("\n");
      const message = document.createElement("div");
      message.className = "studio-problem-message";
      message.textContent = problems.map((p) => p.message).join(" · ");
      badge.appendChild(message);
      overlays.add(id, "studio-problem", { position: { top: -14, right: 10 }, html: badge });
    }
  }

  inCurrentFile(problem) {
    const file = this.currentFile();
    return !problem.file || problem.file === file || file.endsWith(`/${problem.file}`) || problem.file.endsWith(`/${file}`);
  }

  renderList() {
    this.list.replaceChildren();
    this.section.hidden = this.problems.length === 0;
    for (const problem of this.problems) {
      const item = document.createElement("li");
      item.className = `studio-problem studio-problem-${problem.severity || "error"}`;
      const severity = document.createElement("strong");
      severity.textContent = `${this.translate(problem.severity === "warning" ? "Warning" : "Error")}: `;
      item.appendChild(severity);
      const where = [problem.file, problem.line ? `:${problem.line}` : "", problem.element ? ` ${problem.element}` : "", problem.field ? ` ${problem.field}` : ""].join("");
      const text = document.createElement("span");
      text.textContent = problem.message;
      const target = this.targetOf(problem);
      if (target) {
        const link = document.createElement("a");
        link.href = target.href;
        link.textContent = where.trim() || problem.element;
        link.dataset.problemElement = problem.element || "";
        if (target.select) {
          link.addEventListener("click", (event) => {
            event.preventDefault();
            this.select(problem);
          });
        } else {
          link.title = this.translate("Open the editor of %(file)s", { file: problem.file });
        }
        item.append(link, " ", text);
      } else {
        const place = document.createElement("code");
        place.textContent = where.trim();
        item.append(place, " ", text);
      }
      this.list.appendChild(item);
    }
  }

  targetOf(problem) {
    const file = problem.file || "";
    if (file.endsWith(".json") && !file.endsWith("names.json") && !file.endsWith("case.json") && !file.endsWith("reporting.json")) {
      return { href: this.urls.forms + file + (problem.field ? `#${encodeURIComponent(problem.field)}` : "") };
    }
    if (file.endsWith(".dmn")) {
      return { href: this.urls.decisions + file + (problem.element ? `#${encodeURIComponent(problem.element)}` : "") };
    }
    if (problem.element) {
      return { href: "#", select: true };
    }
    return null;
  }

  /** Select the problem's element and scroll it into view (opening its BPMN file first when needed). */
  async select(problem) {
    if (problem.file && problem.file.endsWith(".bpmn") && !this.inCurrentFile(problem)) {
      await this.openFile(problem.file);
    }
    const registry = this.modeler.get("elementRegistry");
    const element = registry.get(problem.element);
    if (!element) {
      return;
    }
    this.modeler.get("selection").select(element);
    this.modeler.get("canvas").scrollToElement(element, { top: 120, bottom: 120, left: 200, right: 200 });
  }
}
