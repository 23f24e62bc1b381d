// The studio's decision table editor (dmn-js Modeler); mounted on #dmn-editor.
import "./dmn-editor.css";
