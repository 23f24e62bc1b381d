// The header's menu button on narrow screens: it shows and hides the navigation.
// Without this script the navigation is always shown (stacked), so every page still works.
"use strict";

document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
  const button = document.querySelector(".nav-toggle");
  const menu = button && document.getElementById(button.getAttribute("aria-controls"));
  if (!button || !menu) {
    return;
  }
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    menu.classList.toggle("is-open", open);
  });
});
