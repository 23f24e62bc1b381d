// The Python code of one BPMN element that the engine hands to its sandbox: gateway conditions, scripts,
// pre/post scripts, timer expressions, multi-instance and loop settings, task properties evaluated as
// expressions (dueIn, candidateGroupExpression, assignee, excludeUsersFrom), message payloads, service
// task parameters and correlation expressions. The texts are taken exactly as the engine reads them.
import { attributeOf, bodyOf, childrenOf, isSpiff, serviceParameters, spiffExtensions, spiffProperties } from "./extensions.js";

// engine/limits.py is_iso_duration: 'P5D' written without quotes is the duration itself, not an expression.
const ISO_DURATION = /^P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/i;

// Task properties the engine evaluates (engine/_workflow.py).
const EXPRESSION_PROPERTIES = ["dueIn", "candidateGroupExpression", "assignee", "excludeUsersFrom"];

function isType(element, type) {
  return Boolean(element && typeof element.$instanceOf === "function" && element.$instanceOf(type));
}

function text(value) {
  return typeof value === "string" ? value : value && typeof value.body === "string" ? value.body : undefined;
}

/** The id of the element a finding on *element* is pinned to: an event for its event definition. */
function ownerId(element) {
  let node = element;
  while (node && !(isType(node, "bpmn:FlowElement") || isType(node, "bpmn:RootElement") || isType(node, "bpmn:Lane"))) {
    node = node.$parent;
  }
  return (node && node.id) || element.id;
}

/**
 * The code of *element* the sandbox compiles: [{ element, kind: "expression"|"script", text, what, name? }].
 *
 * `what` says where the code sits (see messages.js); empty texts are left out (no condition is no code).
 */
export function codeOf(element) {
  const found = [];
  const id = ownerId(element);
  const add = (kind, value, what, name) => {
    const code = text(value);
    if (typeof code === "string" && code.trim() !== "") {
      found.push({ element: id, kind, text: code, what, name });
    }
  };
  if (isType(element, "bpmn:SequenceFlow")) {
    add("expression", element.conditionExpression, "condition");
  }
  if (isType(element, "bpmn:ScriptTask")) {
    add("script", element.script, "script");
  }
  if (isType(element, "bpmn:TimerEventDefinition")) {
    add("expression", element.timeDate || element.timeDuration || element.timeCycle, "timer");
  }
  if (isType(element, "bpmn:ConditionalEventDefinition")) {
    add("expression", element.condition, "conditionalEvent");
  }
  if (isType(element, "bpmn:MultiInstanceLoopCharacteristics")) {
    add("expression", element.loopCardinality, "loopCardinality");
    add("expression", element.completionCondition, "completionCondition");
  }
  if (isType(element, "bpmn:StandardLoopCharacteristics")) {
    add("expression", element.loopCondition, "loopCondition");
  }
  if (isType(element, "bpmn:CorrelationProperty")) {
    for (const retrieval of element.correlationPropertyRetrievalExpression || []) {
      add("expression", retrieval.messagePath, "correlation");
    }
  }
  for (const extension of spiffExtensions(element)) {
    if (isSpiff(extension, "preScript")) {
      add("script", bodyOf(extension), "preScript");
    } else if (isSpiff(extension, "postScript")) {
      add("script", bodyOf(extension), "postScript");
    } else if (isSpiff(extension, "messagePayload")) {
      add("expression", bodyOf(extension), "messagePayload");
    } else if (isSpiff(extension, "processVariableCorrelation")) {
      for (const child of childrenOf(extension).filter((c) => isSpiff(c, "expression"))) {
        add("expression", bodyOf(child), "correlation");
      }
    }
  }
  const properties = spiffProperties(element);
  for (const name of EXPRESSION_PROPERTIES) {
    const value = properties.get(name);
    if (name === "dueIn" && typeof value === "string" && ISO_DURATION.test(value.trim())) {
      continue;
    }
    add("expression", value, name);
  }
  for (const parameter of serviceParameters(element)) {
    add("expression", attributeOf(parameter, "value"), "parameter", attributeOf(parameter, "id") || attributeOf(parameter, "name"));
  }
  return found;
}
