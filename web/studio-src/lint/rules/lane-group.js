// procflow/lane-group: a lane's name is the key of the group that works on its tasks (engine/_workflow.py:
// a task's candidate group is its candidateGroupExpression, else its candidateGroup property, else its
// lane's name). A lane whose name (or id) is no group key of the organisation sends its tasks to no one,
// unless each of its user and manual tasks names its own group. Unnamed lanes are label-required's.
import { is, isAny } from "bpmnlint-utils";

import { lintGroups } from "../context.js";
import { spiffProperties } from "../extensions.js";
import { procflowMessage } from "../messages.js";

function hasOwnGroup(task) {
  const properties = spiffProperties(task);
  return ["candidateGroup", "candidateGroupExpression"].some((name) => {
    const value = properties.get(name);
    return typeof value === "string" && value.trim() !== "";
  });
}

export default function laneGroup() {
  function check(node, reporter) {
    const groups = lintGroups();
    if (!is(node, "bpmn:Lane") || groups === null) {
      return;
    }
    const name = (node.name || "").trim();
    if (name === "" || groups.has(name) || groups.has(node.id)) {
      return;
    }
    const tasks = (node.flowNodeRef || []).filter((ref) => isAny(ref, ["bpmn:UserTask", "bpmn:ManualTask"]));
    if (tasks.length > 0 && tasks.every(hasOwnGroup)) {
      return;
    }
    const known = [...groups].sort().join(", ") || procflowMessage("none");
    reporter.report(
      node.id,
      procflowMessage('Lane "{name}" names no group of the organisation, so its tasks reach no one (groups: {groups})', { name, groups: known }),
      ["name"],
    );
  }
  return { check };
}
