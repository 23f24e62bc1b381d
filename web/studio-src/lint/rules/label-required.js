// procflow/label-required: bpmnlint's label-required, except for the blank start and end events of a
// sub-process (the sub-process's own label says what they start and end; the shipped models leave
// them unnamed, and naming each "Start"/"End" would only add noise to the diagram).
import { is } from "bpmnlint-utils";
import labelRequired from "bpmnlint/rules/label-required.js";

function isBlankSubProcessBoundary(node) {
  return (is(node, "bpmn:StartEvent") || is(node, "bpmn:EndEvent"))
    && (node.eventDefinitions || []).length === 0
    && is(node.$parent, "bpmn:SubProcess");
}

export default function procflowLabelRequired(config) {
  const rule = labelRequired(config);
  function check(node, reporter) {
    if (!isBlankSubProcessBoundary(node)) {
      rule.check(node, reporter);
    }
  }
  return { check };
}
