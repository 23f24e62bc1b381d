// Read and write SpiffWorkflow extension elements exactly as spiff-arena's modeler writes them, through
// bpmn-js commands so that undo and redo work:
//   <bpmn:extensionElements>
//     <spiffworkflow:properties><spiffworkflow:property name="candidateGroup" value="approvers"/></spiffworkflow:properties>
//     <spiffworkflow:preScript>...</spiffworkflow:preScript>
//   </bpmn:extensionElements>
import { is, getBusinessObject } from "bpmn-js/lib/util/ModelUtil";

const MULTI = "properties-panel.multi-command-executor";

/** The extension elements of *bo* of the given moddle *type* ("spiffworkflow:preScript"). */
export function extensionsOf(bo, type) {
  const values = bo.get("extensionElements")?.get("values") || [];
  return values.filter((value) => is(value, type));
}

/** The body text of the first *type* extension element of *bo*, or "". */
export function extensionText(bo, type) {
  return extensionsOf(bo, type)[0]?.get("value") || "";
}

function ensureExtensionElements(element, bo, bpmnFactory, commands) {
  let extensionElements = bo.get("extensionElements");
  if (!extensionElements) {
    extensionElements = bpmnFactory.create("bpmn:ExtensionElements", { values: [] });
    extensionElements.$parent = bo;
    commands.push({
      cmd: "element.updateModdleProperties",
      context: { element, moddleElement: bo, properties: { extensionElements } },
    });
  }
  return extensionElements;
}

function setValues(element, extensionElements, values, commands) {
  commands.push({
    cmd: "element.updateModdleProperties",
    context: { element, moddleElement: extensionElements, properties: { values } },
  });
}

/** Set the body of the *type* extension element of *bo* to *text*; an empty text removes the element. */
export function setExtensionText(injector, element, bo, type, text) {
  const bpmnFactory = injector.get("bpmnFactory");
  const commands = [];
  const existing = extensionsOf(bo, type)[0];
  if ((text || "") === (existing?.get("value") || "")) {
    return;
  }
  if (!text) {
    if (existing) {
      const extensionElements = bo.get("extensionElements");
      setValues(element, extensionElements, extensionElements.get("values").filter((v) => v !== existing), commands);
    }
  } else if (existing) {
    commands.push({
      cmd: "element.updateModdleProperties",
      context: { element, moddleElement: existing, properties: { value: text } },
    });
  } else {
    const extensionElements = ensureExtensionElements(element, bo, bpmnFactory, commands);
    const created = bpmnFactory.create(type, { value: text });
    created.$parent = extensionElements;
    setValues(element, extensionElements, [...extensionElements.get("values"), created], commands);
  }
  if (commands.length) {
    injector.get("commandStack").execute(MULTI, commands);
  }
}

/** The value of the spiffworkflow:property *name* of the element, or "". */
export function spiffProperty(element, name) {
  const container = extensionsOf(getBusinessObject(element), "spiffworkflow:properties")[0];
  const found = (container?.get("properties") || []).find((p) => p.get("name") === name);
  return found?.get("value") ?? "";
}

/** Set the spiffworkflow:property *name* to *value* (a string); "" removes it, and the container when empty. */
export function setSpiffProperty(injector, element, name, value) {
  const bo = getBusinessObject(element);
  const bpmnFactory = injector.get("bpmnFactory");
  const commands = [];
  let container = extensionsOf(bo, "spiffworkflow:properties")[0];
  const properties = container?.get("properties") || [];
  const existing = properties.find((p) => p.get("name") === name);
  if ((value || "") === (existing?.get("value") || "")) {
    return;
  }
  if (!value) {
    const rest = properties.filter((p) => p !== existing);
    if (rest.length) {
      commands.push({
        cmd: "element.updateModdleProperties",
        context: { element, moddleElement: container, properties: { properties: rest } },
      });
    } else {
      const extensionElements = bo.get("extensionElements");
      setValues(element, extensionElements, extensionElements.get("values").filter((v) => v !== container), commands);
    }
  } else if (existing) {
    commands.push({
      cmd: "element.updateModdleProperties",
      context: { element, moddleElement: existing, properties: { value } },
    });
  } else {
    if (!container) {
      const extensionElements = ensureExtensionElements(element, bo, bpmnFactory, commands);
      container = bpmnFactory.create("spiffworkflow:properties", { properties: [] });
      container.$parent = extensionElements;
      setValues(element, extensionElements, [...extensionElements.get("values"), container], commands);
    }
    const created = bpmnFactory.create("spiffworkflow:property", { name, value });
    created.$parent = container;
    commands.push({
      cmd: "element.updateModdleProperties",
      context: { element, moddleElement: container, properties: { properties: [...container.get("properties"), created] } },
    });
  }
  injector.get("commandStack").execute(MULTI, commands);
}

/** The element's spiffworkflow:serviceTaskOperator, or undefined. */
export function serviceOperator(element) {
  return extensionsOf(getBusinessObject(element), "spiffworkflow:serviceTaskOperator")[0];
}

/**
 * Choose the connector of a service task: a new spiffworkflow:serviceTaskOperator with one
 * spiffworkflow:parameter per parameter of the connector (values kept where the id stays).
 */
export function setConnector(injector, element, connector) {
  const bo = getBusinessObject(element);
  const bpmnFactory = injector.get("bpmnFactory");
  const commands = [];
  const old = serviceOperator(element);
  const oldValues = new Map(
    (old?.get("parameterList")?.get("parameters") || []).map((p) => [p.get("id"), p.get("value")]),
  );
  const extensionElements = ensureExtensionElements(element, bo, bpmnFactory, commands);
  const rest = extensionElements.get("values").filter((v) => v !== old);
  if (!connector) {
    setValues(element, extensionElements, rest, commands);
  } else {
    const operator = bpmnFactory.create("spiffworkflow:serviceTaskOperator", { id: connector.name });
    if (old?.get("resultVariable")) {
      operator.set("resultVariable", old.get("resultVariable"));
    }
    const list = bpmnFactory.create("spiffworkflow:parameters", { parameters: [] });
    list.$parent = operator;
    for (const parameter of connector.parameters) {
      const created = bpmnFactory.create("spiffworkflow:parameter", {
        id: parameter.id,
        type: parameter.type,
        value: oldValues.get(parameter.id) || "",
      });
      created.$parent = list;
      list.get("parameters").push(created);
    }
    operator.set("parameterList", list);
    operator.$parent = extensionElements;
    setValues(element, extensionElements, [...rest, operator], commands);
  }
  injector.get("commandStack").execute(MULTI, commands);
}
