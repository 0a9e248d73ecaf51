// The apps that hold tokens for the account (OAuth grants), on /devices: each with what it
// may do, since when, and Revoke. App names are client-supplied text, written with
// textContent only.

import { call, formatTime } from "./api.js";
import { text } from "./devicelist.js";

/// Fills `list` (a <ul>) with the account's app grants; a Revoke signs the app out everywhere
/// (every token of that grant) and lists again. `onError(error)` when a call fails.
export async function renderGrants(list, { onError } = {}) {
  const { grants } = await call("GET", "/api/v1/grants");
  list.replaceChildren();
  for (const grant of grants) {
    const name = grant.client?.name || grant.client?.id || "App";
    const row = document.createElement("li");
    row.className = "device";
    row.dataset.testid = "grant";
    row.dataset.grantId = grant.id;
    const access = text("p", grant.scopes?.length ? grant.scopes.map((scope) => scope.description).join(" · ") : "Sign-in only", "small");
    access.dataset.testid = "grant-scopes";
    const since = text("p", `Since ${formatTime(grant.createdAt)}`, "muted small");
    since.dataset.testid = "grant-since";
    const about = document.createElement("div");
    about.append(text("p", name, "device-name"), access, since);
    const button = text("button", "Revoke", "secondary");
    button.type = "button";
    button.dataset.testid = "grant-revoke";
    button.setAttribute("aria-label", `Revoke ${name}`);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await call("DELETE", `/api/v1/grants/${encodeURIComponent(grant.id)}`);
        await renderGrants(list, { onError });
      } catch (error) {
        button.disabled = false;
        onError?.(error);
      }
    });
    row.append(about, button);
    list.append(row);
  }
  if (!grants.length) {
    const empty = text("li", "No apps are signed in with your account.", "muted");
    empty.dataset.testid = "grants-empty";
    list.append(empty);
  }
}
