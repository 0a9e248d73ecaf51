// The linked devices list, shared by the PC page and /devices. Every value comes from the API
// and is written with textContent, never as HTML.

import { call, formatTime } from "./api.js";

const TYPE_NAMES = { ios: "iPhone / iPad", android: "Android phone", pc: "Computer", web: "Web browser", cli: "Terminal" };

export const typeName = (type) => TYPE_NAMES[type] || String(type);

/// An element `tag` holding `value` as text.
export function text(tag, value, className) {
  const element = document.createElement(tag);
  element.textContent = value;
  if (className) element.className = className;
  return element;
}

/// Fills `list` (a <ul>) with the account's devices. `onChange` runs after a remote logout;
/// `onError(error)` when a call fails.
export async function renderDevices(list, { onChange, onError } = {}) {
  const { devices } = await call("GET", "/api/v1/devices");
  list.replaceChildren();
  for (const item of devices) {
    const row = document.createElement("li");
    row.className = "device";
    row.dataset.testid = "device";
    row.dataset.deviceId = item.id;
    row.dataset.current = String(Boolean(item.current));
    const about = document.createElement("div");
    const title = text("p", item.name, "device-name");
    if (item.current) title.append(" ", text("span", "this device", "badge"));
    about.append(title, text("p", `${typeName(item.type)} · last seen ${formatTime(item.lastSeenAt)} · ${item.lastIP}`, "muted small"));
    row.append(about);
    if (!item.current) {
      const button = text("button", "Log out", "secondary");
      button.type = "button";
      button.dataset.testid = "device-logout";
      button.setAttribute("aria-label", `Log out ${item.name}`);
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await call("DELETE", `/api/v1/devices/${encodeURIComponent(item.id)}`);
          row.remove();
          onChange?.();
        } catch (error) {
          button.disabled = false;
          onError?.(error);
        }
      });
      row.append(button);
    }
    list.append(row);
  }
  if (!devices.length) list.append(text("li", "No devices.", "muted"));
}
