// Procflow's bpmnlint configuration, packed for bpmn-js-bpmnlint: { config, resolver, transformRule }.
//
// bpmnlint's "recommended" rules that fit SpiffWorkflow, and Procflow's own (the "procflow" plugin).
// Left out: no-inclusive-gateway (SpiffWorkflow runs inclusive gateways) and label-required, replaced
// by procflow/label-required (blank start and end events of sub-processes need no label). Rules are
// imported here rather than resolved from node_modules at run time: esbuild bundles them.
import adHocSubProcess from "bpmnlint/rules/ad-hoc-sub-process.js";
import conditionalFlows from "bpmnlint/rules/conditional-flows.js";
import endEventRequired from "bpmnlint/rules/end-event-required.js";
import eventBasedGateway from "bpmnlint/rules/event-based-gateway.js";
import eventSubProcessTypedStartEvent from "bpmnlint/rules/event-sub-process-typed-start-event.js";
import fakeJoin from "bpmnlint/rules/fake-join.js";
import global from "bpmnlint/rules/global.js";
import linkEvent from "bpmnlint/rules/link-event.js";
import noBpmndi from "bpmnlint/rules/no-bpmndi.js";
import noComplexGateway from "bpmnlint/rules/no-complex-gateway.js";
import noDisconnected from "bpmnlint/rules/no-disconnected.js";
import noDuplicateSequenceFlows from "bpmnlint/rules/no-duplicate-sequence-flows.js";
import noGatewayJoinFork from "bpmnlint/rules/no-gateway-join-fork.js";
import noImplicitEnd from "bpmnlint/rules/no-implicit-end.js";
import noImplicitSplit from "bpmnlint/rules/no-implicit-split.js";
import noImplicitStart from "bpmnlint/rules/no-implicit-start.js";
import noOverlappingElements from "bpmnlint/rules/no-overlapping-elements.js";
import singleBlankStartEvent from "bpmnlint/rules/single-blank-start-event.js";
import singleEventDefinition from "bpmnlint/rules/single-event-definition.js";
import startEventRequired from "bpmnlint/rules/start-event-required.js";
import subProcessBlankStartEvent from "bpmnlint/rules/sub-process-blank-start-event.js";
import superfluousGateway from "bpmnlint/rules/superfluous-gateway.js";
import superfluousLabel from "bpmnlint/rules/superfluous-label.js";
import superfluousTermination from "bpmnlint/rules/superfluous-termination.js";

import { bpmnlintMessage } from "./messages.js";
import expressionRefused from "./rules/expression-refused.js";
import labelRequired from "./rules/label-required.js";
import laneGroup from "./rules/lane-group.js";
import userTaskForm from "./rules/user-task-form.js";

const BPMNLINT_RULES = {
  "ad-hoc-sub-process": [adHocSubProcess, "error"],
  "conditional-flows": [conditionalFlows, "error"],
  "end-event-required": [endEventRequired, "error"],
  "event-based-gateway": [eventBasedGateway, "error"],
  "event-sub-process-typed-start-event": [eventSubProcessTypedStartEvent, "error"],
  "fake-join": [fakeJoin, "warn"],
  global: [global, "warn"],
  "link-event": [linkEvent, "error"],
  "no-bpmndi": [noBpmndi, "error"],
  "no-complex-gateway": [noComplexGateway, "error"],
  "no-disconnected": [noDisconnected, "error"],
  "no-duplicate-sequence-flows": [noDuplicateSequenceFlows, "error"],
  "no-gateway-join-fork": [noGatewayJoinFork, "error"],
  "no-implicit-split": [noImplicitSplit, "error"],
  "no-implicit-end": [noImplicitEnd, "error"],
  "no-implicit-start": [noImplicitStart, "error"],
  "no-overlapping-elements": [noOverlappingElements, "warn"],
  "single-blank-start-event": [singleBlankStartEvent, "error"],
  "single-event-definition": [singleEventDefinition, "error"],
  "start-event-required": [startEventRequired, "error"],
  "sub-process-blank-start-event": [subProcessBlankStartEvent, "error"],
  "superfluous-gateway": [superfluousGateway, "warn"],
  "superfluous-label": [superfluousLabel, "warn"],
  "superfluous-termination": [superfluousTermination, "warn"],
};

// A user task without a form and a lane without a group deploy and run, but likely by mistake;
// code the sandbox refuses fails the case when it runs.
const PROCFLOW_RULES = {
  "expression-refused": [expressionRefused, "error"],
  "label-required": [labelRequired, "error"],
  "lane-group": [laneGroup, "warn"],
  "user-task-form": [userTaskForm, "warn"],
};

const PROCFLOW_PACKAGE = "bpmnlint-plugin-procflow";

export const config = {
  rules: {
    ...Object.fromEntries(Object.entries(BPMNLINT_RULES).map(([name, [, level]]) => [name, level])),
    ...Object.fromEntries(Object.entries(PROCFLOW_RULES).map(([name, [, level]]) => [`procflow/${name}`, level])),
  },
};

export const resolver = {
  resolveRule(pkg, ruleName) {
    const rules = pkg === "bpmnlint" ? BPMNLINT_RULES : pkg === PROCFLOW_PACKAGE ? PROCFLOW_RULES : {};
    const entry = Object.hasOwn(rules, ruleName) ? rules[ruleName] : undefined;
    if (!entry) {
      throw new Error(`unknown lint rule <${pkg}/${ruleName}>`);
    }
    return entry[0];
  },
  resolveConfig(pkg, configName) {
    throw new Error(`unknown lint config <${pkg}/${configName}>: Procflow's configuration is packed`);
  },
};

function translatingReporter(reporter) {
  return { report: (id, message, path) => reporter.report(id, bpmnlintMessage(message), path) };
}

/** Report bpmnlint's own rules' messages in the page's language (Procflow's rules translate their own). */
export function transformRule(rule, { pkg }) {
  if (pkg !== "bpmnlint") {
    return rule;
  }
  const { check } = rule;
  const translated = typeof check === "function"
    ? (node, reporter) => check(node, translatingReporter(reporter))
    : {
      enter: check.enter && ((node, reporter) => check.enter(node, translatingReporter(reporter))),
      leave: check.leave && ((node, reporter) => check.leave(node, translatingReporter(reporter))),
    };
  return { ...rule, check: translated };
}

/** What bpmn-js-bpmnlint takes as `linting.bpmnlint` (it passes the object on to bpmnlint's Linter). */
export const linting = { config, resolver, transformRule };
