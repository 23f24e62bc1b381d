// Show an instance's BPMN diagram with bpmn-js (navigated viewer) and mark element states.
"use strict";

(function () {
  const container = document.getElementById("diagram");
  if (!container || typeof window.BpmnJS === "undefined") {
    return;
  }
  const state = JSON.parse(container.dataset.state || "{}");
  const viewer = new window.BpmnJS({ container });

  function showMessage(text) {
    container.classList.add("diagram-missing");
    container.textContent = text;
  }

  fetch(container.dataset.diagramUrl, { credentials: "same-origin" })
    .then((response) => {
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      return response.text();
    })
    .then((xml) => viewer.importXML(xml))
    .then(() => {
      const canvas = viewer.get("canvas");
      const registry = viewer.get("elementRegistry");
      canvas.zoom("fit-viewport", "auto");
      for (const [kind, ids] of Object.entries(state)) {
        for (const id of ids) {
          if (registry.get(id)) {
            canvas.addMarker(id, `marker-${kind}`);
          }
        }
      }
      container.dataset.rendered = "true";
    })
    .catch(() => showMessage(container.dataset.noLayout));
})();
