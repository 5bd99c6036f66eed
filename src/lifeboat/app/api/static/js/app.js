// The dashboard's shell: who is signed in (GET /api/v1/whoami), the hash router, the
// navigation, and the live announcements (aria-live) every page shares.

import { api, describe, token, whenUnauthorized } from "./api.js";
import { fill, h } from "./dom.js";

const ROUTES = [
  [/^#?\/?$/, () => import("./pages/overview.js")],
  [/^#\/login$/, () => import("./pages/login.js")],
  [/^#\/sources\/([^/]+)$/, () => import("./pages/source.js")],
  [/^#\/postgres\/([^/]+)$/, () => import("./pages/postgres.js")],
  [/^#\/jobs$/, () => import("./pages/jobs.js")],
  [/^#\/runs\/([^/]+)$/, () => import("./pages/run.js")],
  [/^#\/drills$/, () => import("./pages/drills.js")],
  [/^#\/repository$/, () => import("./pages/repository.js")],
];

const ROLES = ["viewer", "operator", "admin"];

/** What every page gets: the signed-in principal and the shared helpers. */
export const session = {
  name: null,
  role: null,
  /** True when the signed-in role is at least `role`. */
  can(role) {
    return ROLES.indexOf(this.role) >= ROLES.indexOf(role) && this.role !== null;
  },
};

const main = document.getElementById("main");
const live = document.getElementById("live");
const who = document.getElementById("who");
const nav = document.getElementById("nav");
let cleanup = null;
let loginMessage = null;

/** Say something to screen readers (and show it in the status line). */
export function announce(message) {
  live.textContent = "";
  // A fresh text node so the same words are announced again.
  requestAnimationFrame(() => {
    live.textContent = message;
  });
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

whenUnauthorized((problem) => {
  token.clear();
  session.name = session.role = null;
  loginMessage = problem && (problem.detail || problem.title);
  if (location.hash !== "#/login") navigate("#/login");
});

async function signIn() {
  const me = await api("/api/v1/whoami");
  session.name = me.name;
  session.role = me.role;
}

function renderChrome() {
  const signedIn = session.role !== null;
  nav.hidden = !signedIn;
  if (signedIn) {
    fill(
      who,
      h("span", { class: "who-name" }, session.name),
      " ",
      h("span", { class: `role role-${session.role}` }, session.role),
      " ",
      h("button", { type: "button", class: "link-button", id: "sign-out", onclick: signOut }, "Sign out"),
    );
  } else fill(who);
  const current = location.hash || "#/";
  for (const link of nav.querySelectorAll("a")) {
    const href = link.getAttribute("href");
    const here = href === "#/" ? current === "#/" || current === "" : current.startsWith(href);
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function signOut() {
  token.clear();
  session.name = session.role = null;
  loginMessage = "Signed out.";
  navigate("#/login");
}

async function route() {
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a page's cleanup never stops the next page */
    }
    cleanup = null;
  }
  const hash = location.hash || "#/";
  if (hash !== "#/login" && !token.get()) {
    navigate("#/login");
    return;
  }
  if (hash !== "#/login" && session.role === null) {
    try {
      await signIn();
    } catch (error) {
      if (!token.get()) return; // 401: already on the way to the login page
      fill(main, h("h1", {}, "Lifeboat"), h("p", { class: "error", role: "alert" }, `Cannot reach the daemon: ${describe(error)}`));
      return;
    }
  }
  renderChrome();
  const found = ROUTES.find(([pattern]) => pattern.test(hash));
  if (!found) {
    fill(main, h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/" }, "Back to the overview")));
    return;
  }
  const params = hash.match(found[0]).slice(1).map(decodeURIComponent);
  main.setAttribute("aria-busy", "true");
  fill(main, h("p", { class: "loading" }, "Loading…"));
  try {
    const page = await found[1]();
    const context = { session, announce, navigate, loginMessage };
    loginMessage = null;
    const result = await page.render(main, params, context);
    if (typeof result === "function") cleanup = result;
  } catch (error) {
    if (!token.get() && hash !== "#/login") return;
    fill(main, h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, describe(error)));
  } finally {
    main.removeAttribute("aria-busy");
    document.body.dataset.page = hash.split("/")[1] || "overview";
    document.body.dataset.ready = String(Date.now());
  }
}

/** Move focus to the page's heading after a navigation, as a page load would. */
function focusMain() {
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

// The skip link moves the focus to the content without changing the route.
document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
  main.scrollIntoView();
});

window.addEventListener("hashchange", async () => {
  if (location.hash && !location.hash.startsWith("#/")) return; // an anchor on the page, not a route
  await route();
  focusMain();
});
route();
