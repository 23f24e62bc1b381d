// What the server's sandbox says of each piece of code (POST /studio/<process_id>/lint/expressions).
//
// bpmnlint rules are synchronous: the procflow/expression-refused rule asks this cache, which answers
// from what the server said before and collects what it has not seen yet; a debounced request checks
// those, and the listeners (the lint module) lint again when the answers are in.

// The server's limits (engine/expressions.py): longer texts are not sent; requests stay below the rest.
export const MAX_CODE_CHARS = 20000;
const BATCH_ITEMS = 200;
const BATCH_CHARS = 200000;
const DEBOUNCE_MS = 300;
const MAX_REMEMBERED = 5000;

function keyOf(kind, text) {
  return `${kind}\u0000${text}`;
}

export class ExpressionChecks {
  constructor() {
    this._results = new Map();
    this._wanted = new Map();
    this._sending = new Set();
    this._listeners = new Set();
    this._url = null;
    this._csrfToken = null;
    this._timer = null;
  }

  /** Where to send code to check, with the page's CSRF token; without a URL nothing is sent. */
  configure({ url, csrfToken }) {
    this._url = url || null;
    this._csrfToken = csrfToken || null;
    this._schedule();
  }

  /** Call *listener* whenever answers arrive; returns a function that removes it. */
  onResults(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  /** Record answers directly (what the server returned): [{ kind, text, error, line }]. */
  record(results) {
    for (const result of results) {
      const key = keyOf(result.kind, result.text);
      this._results.delete(key);
      this._results.set(key, { error: result.error || null, line: result.line || null });
    }
    while (this._results.size > MAX_REMEMBERED) {
      this._results.delete(this._results.keys().next().value);
    }
  }

  /**
   * The answer for *code* ({ kind, text, element }): { error, line }, or undefined while unknown
   * (it is then asked for). Texts longer than the server checks are never answered.
   */
  lookup(code) {
    const key = keyOf(code.kind, code.text);
    const known = this._results.get(key);
    if (known !== undefined || code.text.length > MAX_CODE_CHARS) {
      return known;
    }
    if (!this._sending.has(key) && !this._wanted.has(key)) {
      this._wanted.set(key, { element: code.element, kind: code.kind, text: code.text });
      this._schedule();
    }
    return undefined;
  }

  /** Whether some code is waiting for an answer (for tests and status displays). */
  get busy() {
    return this._wanted.size > 0 || this._sending.size > 0;
  }

  _schedule() {
    if (!this._url || this._wanted.size === 0) {
      return;
    }
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._send(), DEBOUNCE_MS);
  }

  _batches() {
    const batches = [];
    let batch = [];
    let chars = 0;
    for (const [key, code] of this._wanted) {
      if (batch.length >= BATCH_ITEMS || (batch.length > 0 && chars + code.text.length > BATCH_CHARS)) {
        batches.push(batch);
        batch = [];
        chars = 0;
      }
      batch.push([key, code]);
      chars += code.text.length;
    }
    if (batch.length > 0) {
      batches.push(batch);
    }
    this._wanted.clear();
    return batches;
  }

  async _send() {
    const batches = this._batches();
    await Promise.all(batches.map((batch) => this._sendBatch(batch)));
    for (const listener of this._listeners) {
      listener();
    }
  }

  async _sendBatch(batch) {
    batch.forEach(([key]) => this._sending.add(key));
    const codes = batch.map(([, code]) => code);
    try {
      const response = await fetch(this._url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": this._csrfToken || "" },
        body: JSON.stringify({ expressions: codes }),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok || !Array.isArray(answer.results)) {
        throw new Error(answer.message || `the server answered ${response.status}`);
      }
      this.record(answer.results);
    } catch (error) {
      // Not knowing is no finding: record nothing wrong, so lint does not ask again in a loop.
      console.warn(`Procflow lint: the sandbox check of ${codes.length} expressions failed: ${error.message}`);
      this.record(codes.map((code) => ({ ...code, error: null, line: null })));
    } finally {
      batch.forEach(([key]) => this._sending.delete(key));
    }
  }
}

/** The one cache of the page (each modeler on the page shares what the server said). */
export const expressionChecks = new ExpressionChecks();
