// Sign-in and registration forms of the phone-side pages (/q/{id} and /devices).

import { call, saveToken, browserName, phoneDeviceType } from "./api.js";

const MESSAGES = {
  invalid_credentials: "Wrong username or password.",
  username_taken: "That username is taken. Pick another one.",
  rate_limited: "Too many attempts. Wait a minute and try again.",
  network: "The server cannot be reached. Check your connection.",
};

const message = (error) => MESSAGES[error.code] || error.message || "Something went wrong.";

let waiting = [];
let wired = false;

/// Shows the sign-in form `#signin-form` (with a link to the register form `#register-form`).
/// Resolves once this browser holds a token.
export function signIn() {
  const promise = new Promise((resolve) => waiting.push(resolve));
  if (!wired) wire();
  wired = true;
  const view = document.getElementById("signin-view");
  view.hidden = false;
  document.getElementById("register-view").hidden = true;
  view.querySelector("input")?.focus();
  return promise;
}

function wire() {
  const signinView = document.getElementById("signin-view");
  const registerView = document.getElementById("register-view");
  const signinForm = document.getElementById("signin-form");
  const registerForm = document.getElementById("register-form");
  const signinError = document.getElementById("signin-error");
  const registerError = document.getElementById("register-error");

  const show = (view) => {
    signinView.hidden = view !== signinView;
    registerView.hidden = view !== registerView;
    view.querySelector("input")?.focus();
  };
  document.getElementById("show-register").addEventListener("click", (event) => { event.preventDefault(); show(registerView); });
  document.getElementById("show-signin").addEventListener("click", (event) => { event.preventDefault(); show(signinView); });

  {
    const finish = async (username, password) => {
      const session = await call("POST", "/api/v1/auth/password", {
        auth: "none",
        body: { username, password, device: { type: phoneDeviceType(), name: browserName() } },
      });
      await saveToken(session.accessToken, session.expiresAt);
      signinView.hidden = true;
      registerView.hidden = true;
      const resolvers = waiting;
      waiting = [];
      for (const resolve of resolvers) resolve(session);
    };

    signinForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      signinError.textContent = "";
      const button = signinForm.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        await finish(signinForm.username.value.trim(), signinForm.password.value);
      } catch (error) {
        signinError.textContent = message(error);
        signinForm.password.focus();
      } finally {
        button.disabled = false;
      }
    });

    registerForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      registerError.textContent = "";
      const button = registerForm.querySelector("button[type=submit]");
      button.disabled = true;
      const username = registerForm.elements["new-username"].value.trim();
      const password = registerForm.elements["new-password"].value;
      const displayName = registerForm.displayName.value.trim();
      try {
        await call("POST", "/api/v1/accounts", { auth: "none", body: { username, password, ...(displayName ? { displayName } : {}) } });
        await finish(username, password);
      } catch (error) {
        registerError.textContent = message(error);
      } finally {
        button.disabled = false;
      }
    });
  }
}
