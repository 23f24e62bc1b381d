// bpmn-js's translate service backed by the texts the server passed in the user's language
// (web/studio/modeler.py CLIENT_TEXTS): fills in {name} (bpmn-js's own texts) and %(name)s (Procflow's).
export function translateModule(strings) {
  function translate(template, replacements = {}) {
    const text = strings[template] || template;
    const fill = (whole, key) => (key in replacements ? String(replacements[key]) : whole);
    return text.replace(/%\(([^)]+)\)s/g, fill).replace(/{([^}]+)}/g, fill);
  }
  return { translate: ["value", translate] };
}
