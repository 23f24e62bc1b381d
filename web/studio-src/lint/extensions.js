// Reading SpiffWorkflow extension elements (spiffworkflow:properties, preScript, ...) from a moddle tree.
//
// The modeler may or may not register a moddle descriptor for the spiffworkflow namespace: without one,
// moddle keeps such elements generic (attributes as plain fields, children in $children, text in
// $body); with one, they are typed (children and text under the descriptor's property names). Every
// helper here reads both shapes, so the lint rules do not depend on how the modeler is configured.

const SPIFF_PREFIX = "spiffworkflow:";

function localName(element) {
  const type = (element && element.$type) || "";
  return type.slice(type.indexOf(":") + 1).toLowerCase();
}

/** Whether *element* is the SpiffWorkflow extension element *name* (case-insensitive, no prefix). */
export function isSpiff(element, name) {
  return Boolean(element && typeof element.$type === "string" && element.$type.startsWith(SPIFF_PREFIX))
    && localName(element) === name.toLowerCase();
}

function descriptorProperties(element) {
  return (element && element.$descriptor && !element.$descriptor.isGeneric && element.$descriptor.properties) || [];
}

/** The child elements of an extension element. */
export function childrenOf(element) {
  if (!element) {
    return [];
  }
  if (Array.isArray(element.$children)) {
    return element.$children;
  }
  return descriptorProperties(element)
    .filter((property) => !property.isAttr && !property.isBody && !property.isReference)
    .flatMap((property) => {
      const value = element[property.name];
      return Array.isArray(value) ? value : value && typeof value === "object" ? [value] : [];
    });
}

/** The text content of an extension element (a script, a payload expression), or undefined. */
export function bodyOf(element) {
  if (!element) {
    return undefined;
  }
  if (typeof element.$body === "string") {
    return element.$body;
  }
  const body = descriptorProperties(element).find((property) => property.isBody);
  return body ? element[body.name] : undefined;
}

/** An attribute of an extension element (name, value, id), whichever shape it was read into. */
export function attributeOf(element, name) {
  if (!element) {
    return undefined;
  }
  if (element[name] !== undefined) {
    return element[name];
  }
  return element.$attrs ? element.$attrs[name] : undefined;
}

/** The SpiffWorkflow extension elements of a BPMN element (its extensionElements' values). */
export function spiffExtensions(element) {
  const values = (element && element.extensionElements && element.extensionElements.values) || [];
  return values.filter((value) => typeof value.$type === "string" && value.$type.startsWith(SPIFF_PREFIX));
}

/** The spiffworkflow:property values of *element* by name (what spiffworkflow:properties holds). */
export function spiffProperties(element) {
  const properties = new Map();
  for (const block of spiffExtensions(element).filter((value) => isSpiff(value, "properties"))) {
    for (const property of childrenOf(block).filter((child) => isSpiff(child, "property"))) {
      const name = attributeOf(property, "name");
      if (typeof name === "string" && !properties.has(name)) {
        properties.set(name, attributeOf(property, "value"));
      }
    }
  }
  return properties;
}

/** The spiffworkflow:parameter elements of a service task's spiffworkflow:serviceTaskOperator. */
export function serviceParameters(element) {
  const parameters = [];
  for (const operator of spiffExtensions(element).filter((value) => isSpiff(value, "serviceTaskOperator"))) {
    for (const list of childrenOf(operator).filter((child) => isSpiff(child, "parameters"))) {
      parameters.push(...childrenOf(list).filter((child) => isSpiff(child, "parameter")));
    }
  }
  return parameters;
}
