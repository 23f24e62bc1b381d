"""Tiny process models that put one corpus payload in its place.

Every model's process id is :data:`PROCESS_ID` and the element that holds the
payload is :data:`ELEMENT`, so a test can check that an error names it.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import engine
from tests.security.corpus import Payload

PROCESS_ID = "attack_model"
ELEMENT = "attack"
MESSAGE = "attack_message"
RECEIVER = "receiver"

_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
"""
_TAIL = "</bpmn:definitions>\n"

_DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="D" namespace="x">
  <decision id="AttackDecision" name="Attack decision">
    <decisionTable id="t" hitPolicy="FIRST">
      <input id="i1" label="Value">
        <inputExpression id="e1" typeRef="number"><text>1</text></inputExpression>
      </input>
      <output id="o1" name="result" typeRef="string" />
      <rule id="r1">
        <inputEntry id="c1"><text>{cell}</text></inputEntry>
        <outputEntry id="c2"><text>"x"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""


def _flows(pairs: list[tuple[str, str]], prefix: str = "f") -> str:
    return "\n".join(
        f'    <bpmn:sequenceFlow id="{prefix}{i}" sourceRef="{a}" targetRef="{b}" />'
        for i, (a, b) in enumerate(pairs)
    )


def _process(process_id: str, nodes: list[str], chain: list[str], extra_flows: str = "") -> str:
    pairs = list(itertools.pairwise(chain))
    body = "\n".join(f"    {node}" for node in nodes)
    return (
        f'  <bpmn:process id="{process_id}" isExecutable="true">\n{body}\n'
        f"{_flows(pairs, prefix=f'{process_id}_f')}\n{extra_flows}  </bpmn:process>\n"
    )


def _user_task(element: str, **properties: str) -> str:
    if not properties:
        return f'<bpmn:userTask id="{element}" name="{element}" />'
    props = "".join(
        f"<spiffworkflow:property name={quoteattr(k)} value={quoteattr(v)} />" for k, v in properties.items()
    )
    return (
        f'<bpmn:userTask id="{element}" name="{element}"><bpmn:extensionElements>'
        f"<spiffworkflow:properties>{props}</spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>"
    )


def _straight(middle: str, *, process_id: str = PROCESS_ID) -> str:
    """start → *middle* (whose id is ELEMENT) → a user task ``after`` → end."""
    nodes = ['<bpmn:startEvent id="start" />', middle, _user_task("after"), '<bpmn:endEvent id="end" />']
    return _HEAD + _process(process_id, nodes, ["start", ELEMENT, "after", "end"]) + _TAIL


def harmless(process_id: str = "harmless") -> list[engine.BundleFile]:
    """A process that runs a little script and waits in a user task: the engine still works."""
    script = '<bpmn:scriptTask id="work"><bpmn:script>n = 1 + 1</bpmn:script></bpmn:scriptTask>'
    nodes = ['<bpmn:startEvent id="start" />', script, _user_task("after"), '<bpmn:endEvent id="end" />']
    text = _HEAD + _process(process_id, nodes, ["start", "work", "after", "end"]) + _TAIL
    return [engine.BundleFile(f"{process_id}.bpmn", "bpmn", text)]


def bundle(payload: Payload, marker: Path | str, *, process_id: str = PROCESS_ID) -> list[engine.BundleFile]:
    """The files of a model that holds *payload* (``{marker}`` replaced by *marker*) in its place."""
    source = payload.source.replace("{marker}", str(marker))
    place = payload.place
    name = f"{process_id}.bpmn"
    if place == "script":
        task = (
            f'<bpmn:scriptTask id="{ELEMENT}"><bpmn:script>{escape(source)}</bpmn:script></bpmn:scriptTask>'
        )
        return [engine.BundleFile(name, "bpmn", _straight(task, process_id=process_id))]
    if place == "condition":
        nodes = [
            '<bpmn:startEvent id="start" />',
            f'<bpmn:exclusiveGateway id="{ELEMENT}" default="to_no" />',
            _user_task("yes"),
            _user_task("no"),
            '<bpmn:endEvent id="end_yes" />',
            '<bpmn:endEvent id="end_no" />',
        ]
        branches = (
            f'    <bpmn:sequenceFlow id="to_yes" sourceRef="{ELEMENT}" targetRef="yes">'
            f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(source)}'
            "</bpmn:conditionExpression></bpmn:sequenceFlow>\n"
            f'    <bpmn:sequenceFlow id="to_no" sourceRef="{ELEMENT}" targetRef="no" />\n'
            '    <bpmn:sequenceFlow id="yes_end" sourceRef="yes" targetRef="end_yes" />\n'
            '    <bpmn:sequenceFlow id="no_end" sourceRef="no" targetRef="end_no" />\n'
        )
        text = _HEAD + _process(process_id, nodes, ["start", ELEMENT], branches) + _TAIL
        return [engine.BundleFile(name, "bpmn", text)]
    if place == "dmn_cell":
        task = (
            f'<bpmn:businessRuleTask id="{ELEMENT}"><bpmn:extensionElements>'
            "<spiffworkflow:calledDecisionId>AttackDecision</spiffworkflow:calledDecisionId>"
            "</bpmn:extensionElements></bpmn:businessRuleTask>"
        )
        return [
            engine.BundleFile(name, "bpmn", _straight(task, process_id=process_id)),
            engine.BundleFile(f"{process_id}.dmn", "dmn", _DMN.format(cell=escape(source))),
        ]
    if place == "timer":
        event = (
            f'<bpmn:intermediateCatchEvent id="{ELEMENT}"><bpmn:timerEventDefinition>'
            f"<bpmn:timeDuration>{escape(source)}</bpmn:timeDuration>"
            "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        )
        return [engine.BundleFile(name, "bpmn", _straight(event, process_id=process_id))]
    if place == "due_in":
        return [
            engine.BundleFile(
                name, "bpmn", _straight(_user_task(ELEMENT, dueIn=source), process_id=process_id)
            )
        ]
    if place == "message_payload":
        throw = (
            f'<bpmn:intermediateThrowEvent id="{ELEMENT}"><bpmn:messageEventDefinition messageRef="m">'
            f"<bpmn:extensionElements><spiffworkflow:messagePayload>{escape(source)}"
            "</spiffworkflow:messagePayload></bpmn:extensionElements>"
            "</bpmn:messageEventDefinition></bpmn:intermediateThrowEvent>"
        )
        sender_nodes = [
            '<bpmn:startEvent id="start" />',
            throw,
            _user_task("after"),
            '<bpmn:endEvent id="end" />',
        ]
        # The receiver reads the organisation's parameter: a payload must not change what it sees.
        receiver_nodes = [
            '<bpmn:startEvent id="r_start"><bpmn:messageEventDefinition messageRef="m" /></bpmn:startEvent>',
            '<bpmn:scriptTask id="r_read"><bpmn:script>seen = parameters["threshold"]</bpmn:script>'
            "</bpmn:scriptTask>",
            _user_task("r_wait"),
            '<bpmn:endEvent id="r_end" />',
        ]
        text = (
            _HEAD
            + f'  <bpmn:message id="m" name="{MESSAGE}" />\n'
            + _process(process_id, sender_nodes, ["start", ELEMENT, "after", "end"])
            + _process(RECEIVER, receiver_nodes, ["r_start", "r_read", "r_wait", "r_end"])
            + _TAIL
        )
        return [engine.BundleFile(name, "bpmn", text)]
    if place == "multi_instance":
        if payload.setting == "completionCondition":
            loop = (
                "<bpmn:loopCardinality>2</bpmn:loopCardinality>"
                f"<bpmn:completionCondition>{escape(source)}</bpmn:completionCondition>"
            )
        else:
            loop = f"<bpmn:loopCardinality>{escape(source)}</bpmn:loopCardinality>"
        task = (
            f'<bpmn:scriptTask id="{ELEMENT}"><bpmn:multiInstanceLoopCharacteristics>{loop}'
            "</bpmn:multiInstanceLoopCharacteristics><bpmn:script>y = 1</bpmn:script></bpmn:scriptTask>"
        )
        return [engine.BundleFile(name, "bpmn", _straight(task, process_id=process_id))]
    if place == "form_schema":
        form = f"{process_id}.schema.json"
        task = _user_task(ELEMENT, formJsonSchemaFilename=form)
        return [
            engine.BundleFile(name, "bpmn", _straight(task, process_id=process_id)),
            engine.BundleFile(form, "form", source),
        ]
    raise AssertionError(f"unknown place {place!r}")


def write_bundle(files: list[engine.BundleFile], folder: Path) -> Path:
    """Write *files* into *folder* (a bundle ``procflow deploy`` reads); return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for item in files:
        (folder / item.name).write_text(item.content, encoding="utf-8")
    return folder
