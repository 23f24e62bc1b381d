// The decision table page (web/studio/decisions.py): after the dmn-js editor saves the table
// (it dispatches "procflow:dmn-saved"), check the saved file again and try the table again.
(function () {
  "use strict";
  let last = null;

  function refresh(event) {
    if (event === last || !window.htmx) {
      return;
    }
    last = event;
    const findings = document.getElementById("decision-findings");
    if (findings) {
      window.htmx.trigger(findings, "procflow-refresh");
    }
    document.querySelectorAll("form.decision-try-form[data-tried]").forEach(function (form) {
      form.requestSubmit();
    });
  }

  window.addEventListener("procflow:dmn-saved", refresh);
  document.addEventListener("DOMContentLoaded", function () {
    const editor = document.getElementById("dmn-editor");
    if (editor) {
      editor.addEventListener("procflow:dmn-saved", refresh);
    }
  });
})();
