// procflow/user-task-form: a user task names its form with the spiffworkflow:property
// formJsonSchemaFilename, as spiff-arena writes it; without one the case handler sees no fields.
import { is } from "bpmnlint-utils";

import { spiffProperties } from "../extensions.js";
import { procflowMessage } from "../messages.js";

export default function userTaskForm() {
  function check(node, reporter) {
    if (!is(node, "bpmn:UserTask")) {
      return;
    }
    const form = spiffProperties(node).get("formJsonSchemaFilename");
    if (typeof form !== "string" || form.trim() === "") {
      reporter.report(
        node.id,
        procflowMessage("User task has no form (no formJsonSchemaFilename property): the case handler gets nothing to fill in"),
      );
    }
  }
  return { check };
}
