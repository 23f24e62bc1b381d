// The studio's BPMN modeler (bpmn-js Modeler, properties panel, lint); mounted on #modeler.
import "./modeler.css";
