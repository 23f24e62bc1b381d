// min-dom for dmn-js in the studio's bundle (web/build-studio.mjs points dmn-js's imports of min-dom here).
//
// dmn-js builds a few elements from HTML with style attributes (the bpmn.io logo it must show, and the
// lightbox behind it; the drag image of a table row). The page's Content-Security-Policy refuses style
// attributes written as HTML, so the logo would lose its place and every view would log a violation.
// This domify takes the style attributes out of the HTML before it is parsed and puts the same
// declarations back through the CSSOM (which the policy allows): the elements look exactly as dmn-js
// made them, and dmn-js's own files stay as they are.
import { domify as parse } from "min-dom";

export * from "min-dom";

const STYLE_ATTRIBUTE = /\sstyle\s*=\s*(?:"([^"]*)"|'([^']*)')/gi;
const MARK = "data-procflow-style";

export function domify(html, doc = document) {
  const styles = [];
  const marked = html.replace(STYLE_ATTRIBUTE, (whole, doubleQuoted, singleQuoted) => {
    styles.push(doubleQuoted ?? singleQuoted);
    return ` ${MARK}="${styles.length - 1}"`;
  });
  const node = parse(marked, doc);
  if (styles.length === 0) {
    return node;
  }
  const elements = [node, ...(node.querySelectorAll ? node.querySelectorAll(`[${MARK}]`) : [])];
  for (const element of elements.filter((candidate) => candidate.hasAttribute && candidate.hasAttribute(MARK))) {
    element.style.cssText = styles[Number(element.getAttribute(MARK))];
    element.removeAttribute(MARK);
  }
  return node;
}
