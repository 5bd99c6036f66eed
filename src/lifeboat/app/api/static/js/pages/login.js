// Sign in: paste a token (made by `lifeboat token create`); it stays in this tab's
// sessionStorage and goes out only as an Authorization header.

import { api, describe, token } from "../api.js";
import { fill, h } from "../dom.js";

export async function render(main, _params, { session, navigate, loginMessage }) {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true, "aria-describedby": "token-help" });
  const error = h("p", { id: "login-error", class: "error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "login card", novalidate: true },
    h("label", { for: "token" }, "API token"),
    input,
    h("p", { id: "token-help", class: "help" }, "Make one with ", h("code", {}, "lifeboat token create --name NAME --role viewer"), ". It is kept in this browser tab only (sessionStorage) and sent as a Bearer token; closing the tab forgets it."),
    error,
    h("div", { class: "actions" }, h("button", { type: "submit", id: "sign-in" }, "Sign in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      error.hidden = false;
      error.textContent = "Paste a token first.";
      input.focus();
      return;
    }
    token.set(value);
    try {
      const me = await api("/api/v1/whoami");
      session.name = me.name;
      session.role = me.role;
      navigate("#/");
    } catch (caught) {
      token.clear();
      session.name = session.role = null;
      error.hidden = false;
      error.textContent = `Not signed in: ${describe(caught)}`;
      input.select();
      input.focus();
    }
  });
  fill(
    main,
    h("h1", {}, "Sign in"),
    loginMessage ? h("p", { class: "notice", role: "status" }, loginMessage) : null,
    form,
  );
  input.focus();
}
