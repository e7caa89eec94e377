// Who the page acts as: GET /_security/_authenticate, the sign-in panel when the node asks for
// credentials, the signed-in user in the header, and signing out.

import {
  apiKeyAuthorization, basicAuthorization, call, describeFailure, storeAuthorization, storedAuthorization,
} from "./api.js";
import { errorBox, h, setText } from "./dom.js";

// Roles that may cancel tasks and run actions; any other role (monitor) makes the page read-only.
const MANAGING_ROLES = new Set(["manage", "admin", "superuser"]);
const WHO_AM_I = "/_security/_authenticate";

/** The parts of an _authenticate answer the page uses. */
function identityOf(body) {
  const b = body || {};
  return {
    username: String(b.username ?? ""),
    roles: Array.isArray(b.roles) ? b.roles.map(String) : [],
    type: String(b.authentication_type ?? ""),
    keyName: b.api_key && b.api_key.name ? String(b.api_key.name) : "",
  };
}

export class Session {
  /** panel: the sign-in section; who: the header's signed-in line; onChange(session) runs
   * whenever the page signs in, out, or learns a different identity. */
  constructor(panel, who, onChange) {
    this.panel = panel;
    this.who = who;
    this.onChange = onChange;
    // "unknown" until the node answers; then "signed-in" or "signed-out".
    this.status = "unknown";
    this.identity = null;
    this.seq = 0; // answers to an older check or sign-in are ignored
    this.checking = null;
    this.errorSlot = panel.querySelector("[data-role=error]");

    const keyForm = panel.querySelector("[data-role=api-key]");
    keyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = keyForm.elements.api_key.value;
      if (key.trim()) this.signIn(apiKeyAuthorization(key), keyForm);
    });
    const passwordForm = panel.querySelector("[data-role=password]");
    passwordForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const { username, password } = passwordForm.elements;
      if (username.value) this.signIn(basicAuthorization(username.value, password.value), passwordForm);
    });
    who.querySelector("[data-role=sign-out]").addEventListener("click", () => this.signOut());
  }

  /** Whether the page may cancel (and run) tasks: false while the role is not known. */
  get canManage() {
    return this.status === "signed-in" && this.identity.roles.some((role) => MANAGING_ROLES.has(role));
  }

  /** Ask the node who the stored credentials are (once at a time); resolves to the status. */
  check() {
    if (!this.checking) {
      this.checking = this.askNode().finally(() => {
        this.checking = null;
      });
    }
    return this.checking;
  }

  async askNode() {
    const seq = ++this.seq;
    const sent = storedAuthorization();
    // Sent explicitly, so that a 401 here does not count as a denied call of the page.
    const result = await call("GET", WHO_AM_I, {}, { authorization: sent });
    if (seq !== this.seq) return this.status;
    if (result.ok) {
      this.accept(result.body);
    } else if (result.status === 401) {
      // Credentials the node no longer takes (say, an invalidated key) are forgotten; the
      // panel says why. Without any, the panel just asks.
      if (sent) storeAuthorization(null);
      this.signedOut(sent ? describeFailure(result) : null);
    } else if (this.status === "unknown") {
      // No answer (or an unexpected one): stay unknown, read-only; the page asks again later.
      this.changed();
    }
    return this.status;
  }

  /** Try credentials: kept only when the node accepts them. */
  async signIn(authorization, form) {
    const seq = ++this.seq;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    this.errorSlot.replaceChildren(h("p", { class: "muted", role: "status" }, "Signing in…"));
    let result;
    try {
      result = await call("GET", WHO_AM_I, {}, { authorization });
    } finally {
      button.disabled = false;
    }
    if (seq !== this.seq) return;
    if (!result.ok) {
      this.errorSlot.replaceChildren(errorBox(describeFailure(result), "signin-error-body"));
      return;
    }
    storeAuthorization(authorization);
    for (const input of this.panel.querySelectorAll("input[type=password]")) input.value = "";
    this.accept(result.body);
  }

  signOut() {
    this.seq += 1;
    storeAuthorization(null);
    this.signedOut(null);
  }

  accept(body) {
    const identity = identityOf(body);
    const same = this.status === "signed-in" && JSON.stringify(identity) === JSON.stringify(this.identity);
    this.status = "signed-in";
    this.identity = identity;
    this.errorSlot.replaceChildren();
    this.panel.hidden = true;
    this.renderWho();
    if (!same) this.changed();
  }

  signedOut(failure) {
    const was = this.status;
    this.status = "signed-out";
    this.identity = null;
    this.errorSlot.replaceChildren(...(failure ? [errorBox(failure, "signin-error-body")] : []));
    const opening = this.panel.hidden;
    this.panel.hidden = false;
    this.renderWho();
    if (opening) {
      const first = this.panel.querySelector("input");
      if (first) first.focus({ preventScroll: true });
    }
    if (was !== "signed-out") this.changed();
  }

  changed() {
    document.body.classList.toggle("signed-out", this.status === "signed-out");
    this.onChange(this);
  }

  /** The header line: nothing while the node runs without security (the anonymous caller). */
  renderWho() {
    const who = this.identity;
    const shown = this.status === "signed-in" && who.type !== "anonymous";
    this.who.hidden = !shown;
    if (!shown) return;
    const name = who.type === "api_key"
      ? `API key ${who.keyName ? `[${who.keyName}]` : ""} of ${who.username}`.replace("  ", " ")
      : who.username;
    setText(this.who.querySelector("[data-role=name]"), name);
    setText(this.who.querySelector("[data-role=role]"), who.roles.join(", ") || "no role");
    this.who.querySelector("[data-role=read-only]").hidden = this.canManage;
  }
}
