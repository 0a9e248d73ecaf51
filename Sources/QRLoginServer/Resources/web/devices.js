// `/devices`: the account's linked devices, each with remote logout; the apps signed in as the
// account, each with Revoke; and sign out.

import { call, currentToken, saveToken, showView, ApiError } from "./api.js";
import { signIn } from "./auth.js";
import { renderDevices } from "./devicelist.js";
import { renderGrants } from "./grantlist.js";

const $ = (id) => document.getElementById(id);

async function show() {
  showView($("devices-view"));
  try {
    const me = await call("GET", "/api/v1/me");
    $("account").textContent = me.account.displayName;
    await Promise.all([renderDevices($("devices"), { onError: failed }), renderGrants($("grants"), { onError: failed })]);
  } catch (error) {
    failed(error);
  }
}

function failed(error) {
  if (error instanceof ApiError && error.status === 401) start();
  else $("devices-error").textContent = error.message;
}

async function start() {
  if (!(await currentToken())) {
    showView($("auth-view"));
    await signIn();
  }
  await show();
}

$("signout").addEventListener("click", async () => {
  try { await call("POST", "/api/v1/auth/logout"); } catch { /* signed out either way */ }
  await saveToken(null);
  location.reload();
});

start();
