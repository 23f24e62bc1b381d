// Properties panel groups for what Procflow executes, written as SpiffWorkflow extension elements the way
// spiff-arena writes them (see extensions.js) and as standard BPMN where BPMN has the element.
import {
  CheckboxEntry,
  SelectEntry,
  TextAreaEntry,
  TextFieldEntry,
  isCheckboxEntryEdited,
  isSelectEntryEdited,
  isTextFieldEntryEdited,
} from "@bpmn-io/properties-panel";
import { useService } from "bpmn-js-properties-panel";
import { getBusinessObject, is, isAny } from "bpmn-js/lib/util/ModelUtil";
import { CodeEntry } from "./CodeEntry.jsx";
import {
  extensionText,
  serviceOperator,
  setConnector,
  setExtensionText,
  setSpiffProperty,
  spiffProperty,
} from "./extensions.js";

const always = () => true;

function options(values, current, translate) {
  const list = [{ value: "", label: translate("(none)") }, ...values];
  if (current && !values.some((o) => o.value === current)) {
    list.push({ value: current, label: `${current} (${translate("not in this bundle")})` });
  }
  return list;
}

// --- entries -------------------------------------------------------------------------------------------

function PropertyText({ element, id, name, label, description }) {
  const injector = useService("injector");
  const translate = useService("translate");
  const debounce = useService("debounceInput");
  return TextFieldEntry({
    element,
    id,
    label: translate(label),
    description: description && translate(description),
    debounce,
    getValue: () => spiffProperty(element, name),
    setValue: (value) => setSpiffProperty(injector, element, name, (value || "").trim()),
  });
}

function PropertyCheckbox({ element, id, name, label }) {
  const injector = useService("injector");
  const translate = useService("translate");
  return CheckboxEntry({
    element,
    id,
    label: translate(label),
    getValue: () => spiffProperty(element, name).toLowerCase() === "true",
    setValue: (value) => setSpiffProperty(injector, element, name, value ? "true" : ""),
  });
}

function FormSelect({ element, id, name, label, suffix }) {
  const injector = useService("injector");
  const translate = useService("translate");
  const context = useService("procflowContext");
  const current = spiffProperty(element, name);
  const forms = context.forms.filter((f) => f.value.endsWith(suffix)).map((f) => ({ value: f.value, label: f.value }));
  return SelectEntry({
    element,
    id,
    label: translate(label),
    getValue: () => current,
    setValue: (value) => setSpiffProperty(injector, element, name, value),
    getOptions: () => options(forms, current, translate),
  });
}

function FormLinks({ element }) {
  const translate = useService("translate");
  const context = useService("procflowContext");
  const form = spiffProperty(element, "formJsonSchemaFilename");
  const base = `/studio/${encodeURIComponent(context.processId)}/forms/`;
  const path = context.forms.find((f) => f.value === form)?.path || form;
  return (
    <div class="bio-properties-panel-entry procflow-links" data-entry-id="procflow-form-links">
      {form && (
        <a href={base + path} data-link="edit-form">
          {translate("Edit this form")}
        </a>
      )}
      <a href={`${base}new?task=${encodeURIComponent(element.id)}`} data-link="new-form">
        {translate("New form for this task")}
      </a>
    </div>
  );
}

function GroupSelect({ element, id }) {
  const injector = useService("injector");
  const translate = useService("translate");
  const context = useService("procflowContext");
  const current = spiffProperty(element, "candidateGroup");
  const groups = context.groups.map((g) => ({ value: g.key, label: g.name === g.key ? g.key : `${g.name} (${g.key})` }));
  return SelectEntry({
    element,
    id,
    label: translate("Candidate group"),
    description: translate("Who may take the task; empty: the group of the lane"),
    getValue: () => current,
    setValue: (value) => setSpiffProperty(injector, element, "candidateGroup", value),
    getOptions: () => options(groups, current, translate),
  });
}

function ExtensionCode({ element, id, type, label, description, target }) {
  const injector = useService("injector");
  const translate = useService("translate");
  const bo = target || getBusinessObject(element);
  return (
    <CodeEntry
      element={element}
      id={id}
      label={translate(label)}
      description={description && translate(description)}
      getValue={() => extensionText(bo, type)}
      setValue={(text) => setExtensionText(injector, element, bo, type, text)}
    />
  );
}

function InstructionsEntry({ element, id }) {
  const injector = useService("injector");
  const translate = useService("translate");
  const debounce = useService("debounceInput");
  const bo = getBusinessObject(element);
  return TextAreaEntry({
    element,
    id,
    label: translate("Instructions"),
    description: translate("Shown above the form (Markdown)"),
    debounce,
    rows: 4,
    getValue: () => extensionText(bo, "spiffworkflow:instructionsForEndUser"),
    setValue: (text) => setExtensionText(injector, element, bo, "spiffworkflow:instructionsForEndUser", text),
  });
}

function ScriptBody({ element, id }) {
  const modeling = useService("modeling");
  const translate = useService("translate");
  return (
    <CodeEntry
      element={element}
      id={id}
      label={translate("Script")}
      description={translate("Python run in the sandbox; the case data are its variables")}
      getValue={() => getBusinessObject(element).get("script") || ""}
      setValue={(text) => modeling.updateProperties(element, { script: text || undefined })}
    />
  );
}

function ConnectorSelect({ element, id }) {
  const injector = useService("injector");
  const translate = useService("translate");
  const context = useService("procflowContext");
  const current = serviceOperator(element)?.get("id") || "";
  const connectors = context.connectors.map((c) => ({ value: c.name, label: c.name }));
  return SelectEntry({
    element,
    id,
    label: translate("Connector"),
    getValue: () => current,
    setValue: (value) => {
      const known = context.connectors.find((c) => c.name === value);
      setConnector(injector, element, value ? known || { name: value, parameters: [] } : null);
    },
    getOptions: () => options(connectors, current, translate),
  });
}

function OperatorAttribute({ element, id, attribute, label, description }) {
  const commandStack = useService("commandStack");
  const translate = useService("translate");
  const debounce = useService("debounceInput");
  const operator = serviceOperator(element);
  return TextFieldEntry({
    element,
    id,
    label: translate(label),
    description: description && translate(description),
    debounce,
    getValue: () => operator?.get(attribute) || "",
    setValue: (value) => {
      if ((value || "") !== (operator.get(attribute) || "")) {
        commandStack.execute("element.updateModdleProperties", {
          element,
          moddleElement: operator,
          properties: { [attribute]: value || undefined },
        });
      }
    },
  });
}

function ParameterValue({ element, id, parameter }) {
  const commandStack = useService("commandStack");
  const translate = useService("translate");
  const debounce = useService("debounceInput");
  return TextFieldEntry({
    element,
    id,
    label: `${parameter.get("id")} (${parameter.get("type") || "any"})`,
    description: translate("An expression: 'text' in quotes, or a variable"),
    debounce,
    getValue: () => parameter.get("value") || "",
    setValue: (value) => {
      if ((value || "") !== (parameter.get("value") || "")) {
        commandStack.execute("element.updateModdleProperties", {
          element,
          moddleElement: parameter,
          properties: { value: value || "" },
        });
      }
    },
  });
}

function DecisionSelect({ element, id }) {
  const injector = useService("injector");
  const translate = useService("translate");
  const context = useService("procflowContext");
  const bo = getBusinessObject(element);
  const current = extensionText(bo, "spiffworkflow:calledDecisionId");
  const decisions = context.decisions.map((d) => ({ value: d.id, label: d.name ? `${d.name} (${d.id})` : d.id }));
  return SelectEntry({
    element,
    id,
    label: translate("Decision"),
    getValue: () => current,
    setValue: (value) => setExtensionText(injector, element, bo, "spiffworkflow:calledDecisionId", value),
    getOptions: () => options(decisions, current, translate),
  });
}

function DecisionLink({ element }) {
  const translate = useService("translate");
  const context = useService("procflowContext");
  const current = extensionText(getBusinessObject(element), "spiffworkflow:calledDecisionId");
  const decision = context.decisions.find((d) => d.id === current);
  if (!decision) {
    return null;
  }
  const href = `/studio/${encodeURIComponent(context.processId)}/decisions/${encodeURIComponent(decision.file)}`;
  return (
    <div class="bio-properties-panel-entry procflow-links">
      <a href={href}>{translate("Edit this decision table")}</a>
    </div>
  );
}

function CalledElementSelect({ element, id }) {
  const modeling = useService("modeling");
  const translate = useService("translate");
  const context = useService("procflowContext");
  const current = getBusinessObject(element).get("calledElement") || "";
  const processes = context.processes.map((p) => ({ value: p.id, label: p.name ? `${p.name} (${p.id})` : p.id }));
  return SelectEntry({
    element,
    id,
    label: translate("Called process"),
    getValue: () => current,
    setValue: (value) => modeling.updateProperties(element, { calledElement: value || undefined }),
    getOptions: () => options(processes, current, translate),
  });
}

function ConditionEntry({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const translate = useService("translate");
  const bo = getBusinessObject(element);
  return (
    <CodeEntry
      element={element}
      id={id}
      label={translate("Condition")}
      description={translate("A Python expression; the flow is taken when it is true")}
      getValue={() => bo.get("conditionExpression")?.get("body") || ""}
      setValue={(text) =>
        modeling.updateProperties(element, {
          conditionExpression: text ? bpmnFactory.create("bpmn:FormalExpression", { body: text }) : undefined,
        })
      }
    />
  );
}

function LoopReference({ element, id, property, label, description }) {
  const commandStack = useService("commandStack");
  const bpmnFactory = useService("bpmnFactory");
  const translate = useService("translate");
  const debounce = useService("debounceInput");
  const loop = getBusinessObject(element).get("loopCharacteristics");
  return TextFieldEntry({
    element,
    id,
    label: translate(label),
    description: translate(description),
    debounce,
    getValue: () => loop.get(property)?.get("id") || "",
    setValue: (value) => {
      const name = (value || "").trim();
      if (name === (loop.get(property)?.get("id") || "")) {
        return;
      }
      let reference;
      if (name) {
        reference = bpmnFactory.create("bpmn:ItemAwareElement", { id: name });
        reference.$parent = loop;
      }
      commandStack.execute("element.updateModdleProperties", {
        element,
        moddleElement: loop,
        properties: { [property]: reference },
      });
    },
  });
}

function LoopItem({ element, id, property, type, label, description }) {
  const commandStack = useService("commandStack");
  const bpmnFactory = useService("bpmnFactory");
  const translate = useService("translate");
  const debounce = useService("debounceInput");
  const loop = getBusinessObject(element).get("loopCharacteristics");
  return TextFieldEntry({
    element,
    id,
    label: translate(label),
    description: translate(description),
    debounce,
    getValue: () => loop.get(property)?.get("name") || "",
    setValue: (value) => {
      const name = (value || "").trim();
      if (name === (loop.get(property)?.get("name") || "")) {
        return;
      }
      let item;
      if (name) {
        item = bpmnFactory.create(type, { id: name, name });
        item.$parent = loop;
      }
      commandStack.execute("element.updateModdleProperties", {
        element,
        moddleElement: loop,
        properties: { [property]: item },
      });
    },
  });
}

function ScriptsOnInstances({ element, id }) {
  const commandStack = useService("commandStack");
  const translate = useService("translate");
  const loop = getBusinessObject(element).get("loopCharacteristics");
  return CheckboxEntry({
    element,
    id,
    label: translate("Run the pre- and post-scripts on each instance"),
    getValue: () => String(loop.get("spiffworkflow:scriptsOnInstances")) === "true",
    setValue: (value) =>
      commandStack.execute("element.updateModdleProperties", {
        element,
        moddleElement: loop,
        properties: { "spiffworkflow:scriptsOnInstances": value ? "true" : undefined },
      }),
  });
}

function definitionsOf(element) {
  let bo = getBusinessObject(element);
  while (bo.$parent) {
    bo = bo.$parent;
  }
  return bo;
}

function CorrelationExpression({ element, id, expression }) {
  const commandStack = useService("commandStack");
  const translate = useService("translate");
  const debounce = useService("debounceInput");
  const formal = expression.get("messagePath");
  return TextFieldEntry({
    element,
    id,
    label: `${translate("Correlation")}: ${expression.$parent.get("name") || expression.$parent.get("id")}`,
    description: translate("Expression on the message payload that gives the correlation value"),
    debounce,
    getValue: () => formal?.get("body") || "",
    setValue: (value) => {
      if ((value || "") !== (formal.get("body") || "")) {
        commandStack.execute("element.updateModdleProperties", {
          element,
          moddleElement: formal,
          properties: { body: value || "" },
        });
      }
    },
  });
}

function addCorrelation(injector, element, message, name) {
  const commandStack = injector.get("commandStack");
  const bpmnFactory = injector.get("bpmnFactory");
  const definitions = definitionsOf(element);
  const existing = definitions
    .get("rootElements")
    .find((r) => is(r, "bpmn:CorrelationProperty") && (r.get("name") === name || r.get("id") === name));
  const formal = bpmnFactory.create("bpmn:FormalExpression", { body: name });
  const retrieval = bpmnFactory.create("bpmn:CorrelationPropertyRetrievalExpression", {
    messageRef: message,
    messagePath: formal,
  });
  formal.$parent = retrieval;
  if (existing) {
    retrieval.$parent = existing;
    commandStack.execute("element.updateModdleProperties", {
      element,
      moddleElement: existing,
      properties: {
        correlationPropertyRetrievalExpression: [...existing.get("correlationPropertyRetrievalExpression"), retrieval],
      },
    });
    return;
  }
  const property = bpmnFactory.create("bpmn:CorrelationProperty", {
    id: name,
    name,
    correlationPropertyRetrievalExpression: [retrieval],
  });
  retrieval.$parent = property;
  property.$parent = definitions;
  commandStack.execute("element.updateModdleProperties", {
    element,
    moddleElement: definitions,
    properties: { rootElements: [...definitions.get("rootElements"), property] },
  });
}

// Not a debounced text field: a name typed letter by letter must not make a property per letter.
function NewCorrelation({ element, id, message }) {
  const injector = useService("injector");
  const translate = useService("translate");
  const commit = (event) => {
    const name = event.target.value.trim();
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      event.target.value = "";
      addCorrelation(injector, element, message, name);
    }
  };
  const inputId = `bio-properties-panel-${id}`;
  return (
    <div class="bio-properties-panel-entry" data-entry-id={id}>
      <div class="bio-properties-panel-textfield">
        <label for={inputId} class="bio-properties-panel-label">
          {translate("Correlate on a new property")}
        </label>
        <input
          id={inputId}
          name={id}
          type="text"
          spellcheck="false"
          autocomplete="off"
          class="bio-properties-panel-input"
          onBlur={commit}
          onKeyDown={(event) => event.key === "Enter" && commit(event)}
        />
      </div>
      <div class="bio-properties-panel-description">
        {translate("Its name; the payload key of the same name gives the value")}
      </div>
    </div>
  );
}

// --- groups --------------------------------------------------------------------------------------------

function messageDefinition(element) {
  const bo = getBusinessObject(element);
  return (bo.eventDefinitions || []).find((d) => is(d, "bpmn:MessageEventDefinition"));
}

function isThrowing(element) {
  return isAny(element, ["bpmn:IntermediateThrowEvent", "bpmn:EndEvent", "bpmn:SendTask"]);
}

function userTaskGroups(element) {
  const form = {
    id: "procflow-form",
    label: "Form",
    entries: [
      { id: "formJsonSchemaFilename", component: FormSelect, name: "formJsonSchemaFilename", label: "Form (JSON Schema)", suffix: ".schema.json", isEdited: isSelectEntryEdited },
      { id: "formUiSchemaFilename", component: FormSelect, name: "formUiSchemaFilename", label: "UI schema", suffix: ".uischema.json", isEdited: isSelectEntryEdited },
      { id: "procflow-form-links", component: FormLinks, isEdited: () => false },
    ],
  };
  if (is(element, "bpmn:StartEvent")) {
    return [form];
  }
  form.entries.push({ id: "instructionsForEndUser", component: InstructionsEntry, isEdited: always });
  const assignment = {
    id: "procflow-assignment",
    label: "Who and when",
    entries: [
      { id: "candidateGroup", component: GroupSelect, isEdited: isSelectEntryEdited },
      { id: "candidateGroupExpression", component: PropertyText, name: "candidateGroupExpression", label: "Candidate group from an expression", description: "Evaluated when the task starts; overrides the group above", isEdited: isTextFieldEntryEdited },
      { id: "assignee", component: PropertyText, name: "assignee", label: "Assignee (expression)", description: "An expression giving a username", isEdited: isTextFieldEntryEdited },
      { id: "excludeStarter", component: PropertyCheckbox, name: "excludeStarter", label: "Not the one who started the case", isEdited: isCheckboxEntryEdited },
      { id: "excludeCompletersOf", component: PropertyText, name: "excludeCompletersOf", label: "Not who completed these tasks", description: "Task ids, separated by commas", isEdited: isTextFieldEntryEdited },
      { id: "excludeUsersFrom", component: PropertyText, name: "excludeUsersFrom", label: "Not these users (expression)", description: "An expression giving a username or a list of them", isEdited: isTextFieldEntryEdited },
      { id: "dueIn", component: PropertyText, name: "dueIn", label: "Due (expression)", description: "A duration such as 'P5D', or a date", isEdited: isTextFieldEntryEdited },
    ],
  };
  return [form, assignment];
}

function scriptGroup(element) {
  const entries = [];
  if (is(element, "bpmn:ScriptTask")) {
    entries.push({ id: "script", component: ScriptBody, isEdited: always });
  }
  entries.push(
    { id: "preScript", component: ExtensionCode, type: "spiffworkflow:preScript", label: "Pre-script", description: "Runs before the task", isEdited: always },
    { id: "postScript", component: ExtensionCode, type: "spiffworkflow:postScript", label: "Post-script", description: "Runs after the task", isEdited: always },
  );
  return { id: "procflow-scripts", label: "Scripts", entries };
}

function serviceGroup(element) {
  const operator = serviceOperator(element);
  const entries = [{ id: "serviceTaskOperator", component: ConnectorSelect, isEdited: isSelectEntryEdited }];
  if (operator) {
    entries.push({
      id: "resultVariable",
      component: OperatorAttribute, attribute: "resultVariable", label: "Result variable", description: "Where the connector's answer is stored",
      isEdited: isTextFieldEntryEdited,
    });
    (operator.get("parameterList")?.get("parameters") || []).forEach((parameter, index) => {
      entries.push({
        id: `parameter-${index}`,
        component: ParameterValue, parameter: parameter,
        isEdited: isTextFieldEntryEdited,
      });
    });
  }
  return { id: "procflow-connector", label: "Connector", entries };
}

function messageGroup(element) {
  const definition = messageDefinition(element);
  const target = definition || getBusinessObject(element);
  const message = target.get("messageRef");
  const entries = [];
  if (isThrowing(element)) {
    entries.push({
      id: "messagePayload",
      component: ExtensionCode, target: target, type: "spiffworkflow:messagePayload", label: "Payload", description: "A Python expression, usually a dict, sent with the message",
      isEdited: always,
    });
  } else {
    entries.push({
      id: "messageVariable",
      component: ExtensionCode, target: target, type: "spiffworkflow:messageVariable", label: "Store the payload in", description: "A variable name",
      isEdited: always,
    });
  }
  if (message) {
    const expressions = definitionsOf(element)
      .get("rootElements")
      .filter((r) => is(r, "bpmn:CorrelationProperty"))
      .flatMap((r) => r.get("correlationPropertyRetrievalExpression"))
      .filter((e) => e.get("messageRef") === message);
    expressions.forEach((expression, index) => {
      entries.push({
        id: `correlation-${index}`,
        component: CorrelationExpression, expression: expression,
        isEdited: isTextFieldEntryEdited,
      });
    });
    entries.push({ id: "correlation-new", component: NewCorrelation, message: message, isEdited: () => false });
  }
  return { id: "procflow-message", label: "Message data", entries };
}

function multiInstanceGroup() {
  return {
    id: "procflow-multi-instance",
    label: "Multi-instance data",
    entries: [
      { id: "loopDataInputRef", component: LoopReference, property: "loopDataInputRef", label: "Input collection", description: "A list variable: one instance per item", isEdited: isTextFieldEntryEdited },
      { id: "inputDataItem", component: LoopItem, property: "inputDataItem", type: "bpmn:DataInput", label: "Input item", description: "The variable holding each instance's item", isEdited: isTextFieldEntryEdited },
      { id: "loopDataOutputRef", component: LoopReference, property: "loopDataOutputRef", label: "Output collection", description: "The list the instances' results are collected in", isEdited: isTextFieldEntryEdited },
      { id: "outputDataItem", component: LoopItem, property: "outputDataItem", type: "bpmn:DataOutput", label: "Output item", description: "The variable each instance leaves its result in", isEdited: isTextFieldEntryEdited },
      { id: "scriptsOnInstances", component: ScriptsOnInstances, isEdited: isCheckboxEntryEdited },
    ],
  };
}

/** The groups for *element*, labels untranslated. */
export function procflowGroups(element) {
  const bo = getBusinessObject(element);
  const groups = [];
  if (is(element, "bpmn:UserTask") || (is(element, "bpmn:StartEvent") && !is(element.parent, "bpmn:SubProcess"))) {
    groups.push(...userTaskGroups(element));
  }
  if (is(element, "bpmn:ServiceTask")) {
    groups.push(serviceGroup(element));
  }
  if (is(element, "bpmn:BusinessRuleTask")) {
    groups.push({
      id: "procflow-decision",
      label: "Decision",
      entries: [
        { id: "calledDecisionId", component: DecisionSelect, isEdited: isSelectEntryEdited },
        { id: "procflow-decision-link", component: DecisionLink, isEdited: () => false },
      ],
    });
  }
  if (is(element, "bpmn:CallActivity")) {
    groups.push({
      id: "procflow-call",
      label: "Called process",
      entries: [{ id: "calledElement", component: CalledElementSelect, isEdited: isSelectEntryEdited }],
    });
  }
  if (is(element, "bpmn:SequenceFlow") && isAny(bo.get("sourceRef"), ["bpmn:ExclusiveGateway", "bpmn:InclusiveGateway"])) {
    groups.push({
      id: "procflow-condition",
      label: "Condition",
      entries: [{ id: "conditionExpression", component: ConditionEntry, isEdited: always }],
    });
  }
  if (messageDefinition(element) || isAny(element, ["bpmn:SendTask", "bpmn:ReceiveTask"])) {
    groups.push(messageGroup(element));
  }
  if (is(bo.loopCharacteristics, "bpmn:MultiInstanceLoopCharacteristics")) {
    groups.push(multiInstanceGroup());
  }
  if (is(element, "bpmn:Activity")) {
    groups.push(scriptGroup(element));
  }
  return groups;
}

/** A properties provider adding Procflow's groups after bpmn-js's own (General, Documentation, Timer...). */
export default class ProcflowPropertiesProvider {
  constructor(propertiesPanel, translate) {
    this._translate = translate;
    propertiesPanel.registerProvider(400, this);
  }

  getGroups(element) {
    return (groups) => {
      const ours = procflowGroups(element).map((group) => ({ ...group, label: this._translate(group.label) }));
      const general = groups.findIndex((g) => g.id === "general");
      groups.splice(general + 1, 0, ...ours);
      return groups;
    };
  }
}

ProcflowPropertiesProvider.$inject = ["propertiesPanel", "translate"];
