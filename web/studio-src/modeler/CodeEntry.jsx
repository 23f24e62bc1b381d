// A properties-panel entry holding a CodeMirror 6 editor for Python scripts and expressions.
import { useEffect, useRef } from "@bpmn-io/properties-panel/preact/hooks";
import { EditorView, basicSetup } from "codemirror";
import { python } from "@codemirror/lang-python";

/**
 * Props: element, id, label, description, getValue(), setValue(text), rows (height in lines).
 * The editor writes through setValue after a short pause in typing, so one edit is one undo step.
 */
export function CodeEntry(props) {
  const { element, id, label, description, getValue, setValue } = props;
  const host = useRef(null);
  const view = useRef(null);
  const timer = useRef(null);
  const latest = useRef(setValue);
  latest.current = setValue;

  useEffect(() => {
    const flush = (text) => {
      clearTimeout(timer.current);
      timer.current = null;
      if (text !== (getValue() || "")) {
        latest.current(text);
      }
    };
    const editor = new EditorView({
      doc: getValue() || "",
      parent: host.current,
      extensions: [
        basicSetup,
        python(),
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ "aria-label": label, "data-entry": id }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) {
            clearTimeout(timer.current);
            const text = update.state.doc.toString();
            timer.current = setTimeout(() => flush(text), 300);
          }
          if (update.focusChanged && !update.view.hasFocus && timer.current) {
            flush(update.state.doc.toString());
          }
        }),
      ],
    });
    view.current = editor;
    return () => {
      if (timer.current) {
        flush(editor.state.doc.toString());
      }
      editor.destroy();
      view.current = null;
    };
  }, [element, id]);

  // Undo, redo and edits elsewhere change the model under the editor: show them.
  const current = getValue() || "";
  useEffect(() => {
    const editor = view.current;
    if (editor && !timer.current && editor.state.doc.toString() !== current) {
      editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: current } });
    }
  }, [current]);

  return (
    <div class="bio-properties-panel-entry procflow-code-entry" data-entry-id={id}>
      <label class="bio-properties-panel-label">{label}</label>
      <div class="procflow-code" ref={host}></div>
      {description && <div class="bio-properties-panel-description">{description}</div>}
    </div>
  );
}
