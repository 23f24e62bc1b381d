// procflow/expression-refused: code the engine's sandbox would refuse (a syntax error, an import, a
// dunder, a forbidden builtin), as the server's compiler says (web/studio/lint.py). Rules are
// synchronous: what the server has not answered yet is asked for and reported on the next lint.
import { expressionChecks } from "../expression-checks.js";
import { codeOf } from "../expressions.js";
import { procflowMessage, whatLabel } from "../messages.js";

export default function expressionRefused() {
  function check(node, reporter) {
    for (const code of codeOf(node)) {
      const answer = expressionChecks.lookup(code);
      if (!answer || !answer.error) {
        continue;
      }
      const multiline = code.text.trim().includes("\n");
      const values = { what: whatLabel(code.what, code.name), error: answer.error, line: answer.line };
      const message = answer.line && multiline
        ? procflowMessage("{what} is refused by the sandbox (line {line}): {error}", values)
        : procflowMessage("{what} is refused by the sandbox: {error}", values);
      reporter.report(code.element, message);
    }
  }
  return { check };
}
