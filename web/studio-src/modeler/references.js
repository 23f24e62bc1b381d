// bpmn-moddle drops a reference it cannot resolve. spiff-arena's multi-instance tasks name their collections
// by variable (<bpmn:loopDataInputRef>coi_pending</bpmn:loopDataInputRef>), not by the id of a data object,
// so put them back as references to an element of that id: saving writes them exactly as they were read.
import { is } from "bpmn-js/lib/util/ModelUtil";

const KEPT = new Set(["bpmn:loopDataInputRef", "bpmn:loopDataOutputRef", "loopDataInputRef", "loopDataOutputRef"]);

/** Restore them after *moddle* (bpmn-moddle, or a modeler's "moddle" service) read XML with *warnings*. */
export function restoreUnresolvedReferences(moddle, warnings) {
  for (const warning of warnings || []) {
    const { element, property, value } = warning;
    if (!element || !KEPT.has(property) || !value || !is(element, "bpmn:MultiInstanceLoopCharacteristics")) {
      continue;
    }
    const reference = moddle.create("bpmn:ItemAwareElement", { id: value });
    reference.$parent = element;
    element.set(property.replace(/^bpmn:/, ""), reference);
  }
}
