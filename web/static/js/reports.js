// Draws a report's chart with Chart.js from the JSON the page carries in
// <script type="application/json" id="report-chart-data"> (the Content-Security-Policy allows no
// inline script). The JSON: {type, labels, datasets: [{key, label, data, keys?}], stacked?, yTitle?}.
"use strict";

(() => {
  // One colour per series key: categories, impact parts, goal statuses, documentation states.
  const COLOURS = {
    advice: "#1d6fd8",
    document_comments: "#7b3fbf",
    mini_competition: "#2e7d32",
    other: "#8a6d00",
    not_joined: "#b3261e",
    stage1: "#1d6fd8",
    stage2: "#7b3fbf",
    total: "#2e7d32",
    follow_up: "#8a6d00",
    green: "#2e7d32",
    amber: "#e0a100",
    red: "#b3261e",
    not_required: "#9aa5b1",
    complete: "#2e7d32",
    pending: "#1d6fd8",
    overdue: "#b3261e",
  };
  const FALLBACK = ["#1d6fd8", "#7b3fbf", "#2e7d32", "#8a6d00", "#b3261e", "#00838f"];

  function colour(key, index) {
    return COLOURS[key] || FALLBACK[index % FALLBACK.length];
  }

  function config(spec) {
    const round = spec.type === "doughnut" || spec.type === "pie";
    const datasets = spec.datasets.map((set, index) => ({
      label: set.label,
      data: set.data,
      backgroundColor: round ? (set.keys || []).map(colour) : colour(set.key, index),
      borderWidth: round ? 1 : 0,
    }));
    const options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      locale: document.documentElement.lang || "en",
      plugins: { legend: { position: "bottom" } },
    };
    if (!round) {
      options.scales = {
        x: { stacked: Boolean(spec.stacked) },
        y: {
          stacked: Boolean(spec.stacked),
          beginAtZero: true,
          ticks: spec.integer ? { precision: 0 } : {},
          title: { display: Boolean(spec.yTitle), text: spec.yTitle || "" },
        },
      };
    }
    return { type: spec.type, data: { labels: spec.labels, datasets }, options };
  }

  function draw() {
    const source = document.getElementById("report-chart-data");
    const canvas = document.getElementById("report-chart");
    if (!source || !canvas || typeof window.Chart === "undefined") {
      return;
    }
    const spec = JSON.parse(source.textContent);
    const chart = new window.Chart(canvas, config(spec));
    canvas.dataset.drawn = chart ? "true" : "false";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
