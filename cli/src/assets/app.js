// The try-it page: talks to the auth API with fetch, renders only with textContent.
"use strict";
const base = document.body.dataset.basePath || "/api/auth";
const $ = (id) => document.getElementById(id);

async function call(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { ok: res.ok, status: res.status, data };
}

function say(text, isError) {
  const m = $("message");
  m.textContent = text;
  m.className = isError ? "error" : "";
}

function errorText(r) {
  if (r.data && typeof r.data === "object" && r.data.message) {
    return `${r.status} ${r.data.code || ""} ${r.data.message}`.replace(/\s+/g, " ");
  }
  return `Request failed with status ${r.status}`;
}

async function refresh() {
  const r = await call("GET", "/get-session");
  $("session").textContent = JSON.stringify(r.data, null, 2);
  const signedIn = r.ok && r.data && r.data.user;
  $("signed-in").hidden = !signedIn;
  $("signed-out").hidden = !!signedIn;
  $("who").textContent = signedIn ? `${r.data.user.name} <${r.data.user.email}>` : "";
}

function formData(form) {
  const f = new FormData(form);
  const out = {};
  for (const [k, v] of f.entries()) out[k] = v;
  return out;
}

document.addEventListener("DOMContentLoaded", () => {
  $("base").textContent = base;
  $("sign-up").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await call("POST", "/sign-up/email", formData(e.target));
    say(r.ok ? "Account created; you are signed in." : errorText(r), !r.ok);
    if (r.ok) e.target.reset();
    await refresh();
  });
  $("sign-in").addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = formData(e.target);
    const body = { email: data.email, password: data.password, rememberMe: data.rememberMe === "on" };
    const r = await call("POST", "/sign-in/email", body);
    say(r.ok ? "Signed in." : errorText(r), !r.ok);
    await refresh();
  });
  $("sign-out").addEventListener("click", async () => {
    const r = await call("POST", "/sign-out", {});
    say(r.ok ? "Signed out." : errorText(r), !r.ok);
    await refresh();
  });
  refresh();
});
