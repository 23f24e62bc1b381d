// What the lint rules know of the page they run on: the organisation's group keys (null: not known).
//
// bpmnlint rules are plain functions created by the linter; they read this instead of the DOM, so the
// same rules run in Node (tests/studio/lint_models.mjs) and in the modeler.

const state = { groups: null };

/** Set the organisation's group keys (an array of keys, or of objects with a `key`); null: unknown. */
export function setLintGroups(groups) {
  state.groups = Array.isArray(groups)
    ? new Set(groups.map((group) => (group && typeof group === "object" ? group.key : group)).filter((key) => typeof key === "string"))
    : null;
}

/** The organisation's group keys as a Set, or null when they are not known. */
export function lintGroups() {
  return state.groups;
}
