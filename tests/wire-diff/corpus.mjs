// The corpus: every endpoint both servers have, described in a few lines, and the variants every
// description is crossed with. A plugin joins by adding its endpoints to ENDPOINTS (and itself to
// both servers' configuration: reference.mjs and scripts/conformance-server).
import { BASE_PATH, COOKIE } from "./lib.mjs";

// States a case can start in (lib.mjs World.fixture builds each):
//   none        a user exists, the client has no cookie
//   session     the user is signed in (and has a second session, `otherToken`)
//   expired     the client's session row has expired
//   deleted     the client's cookie is signed but its session row is gone
//   stale       the session is two days old: past updateAge and freshAge
//   unverified  signed in, the email is not verified
//   session2fa  signed in, two-factor enabled (TOTP secret and backup codes known)
//   challenge   a two-factor user mid sign-in: the client holds the two_factor cookie
const SESSION_STATES = ["none", "session", "expired", "deleted", "stale"];
const TWO_FACTOR_STATES = ["none", "session", "session2fa", "challenge", "expired"];

/**
 * method, path (a string, or a function of the fixture with `label` naming it), states, and:
 *   body(f)     the valid JSON body;     query(f)  the valid query
 *   optional    fields the valid request leaves out, with a valid value each
 *   redirect    fields (body or query) holding a redirect target
 *   form        the endpoint accepts application/x-www-form-urlencoded
 *   ip          the endpoint can create a session: X-Forwarded-For spellings matter
 */
export const ENDPOINTS = [
  { method: "GET", path: "/ok", states: ["none", "session"] },
  { method: "GET", path: "/error", query: () => ({ error: "SOME_ERROR" }), states: ["none"] },
  {
    method: "GET",
    path: "/get-session",
    query: () => ({}),
    optional: { disableCookieCache: "true", disableRefresh: "true" },
    states: [...SESSION_STATES, "session2fa", "challenge"],
    ip: true,
  },
  { method: "POST", path: "/sign-out", body: () => ({}), states: SESSION_STATES },
  { method: "GET", path: "/list-sessions", states: SESSION_STATES },
  { method: "POST", path: "/revoke-session", body: (f) => ({ token: f.otherToken }), states: SESSION_STATES },
  { method: "POST", path: "/revoke-sessions", body: () => ({}), states: SESSION_STATES },
  { method: "POST", path: "/revoke-other-sessions", body: () => ({}), states: SESSION_STATES },
  {
    method: "POST",
    path: "/update-user",
    body: () => ({ name: "Renamed User", image: "https://example.com/a.png" }),
    states: SESSION_STATES,
  },
  { method: "POST", path: "/update-session", body: () => ({}), states: SESSION_STATES },
  {
    method: "POST",
    path: "/change-email",
    body: (f) => ({ newEmail: f.freshEmail, callbackURL: "/changed" }),
    redirect: ["callbackURL"],
    states: SESSION_STATES,
  },
  {
    method: "POST",
    path: "/change-password",
    body: (f) => ({ currentPassword: f.password, newPassword: "new-password-123", revokeOtherSessions: true }),
    states: SESSION_STATES,
  },
  {
    // Without revokeOtherSessions: Portcullis rotates the caller's session (DIVERGENCES.md).
    method: "POST",
    path: () => "/change-password",
    label: "/change-password(keep-others)",
    body: (f) => ({ currentPassword: f.password, newPassword: "new-password-123" }),
    states: ["session"],
  },
  { method: "POST", path: "/verify-password", body: (f) => ({ password: f.password }), states: SESSION_STATES },
  {
    method: "POST",
    path: "/delete-user",
    body: () => ({}),
    optional: { password: "correct-horse-battery", callbackURL: "/bye" },
    redirect: ["callbackURL"],
    states: SESSION_STATES,
  },
  {
    method: "GET",
    path: "/delete-user/callback",
    query: (f) => ({ token: f.deleteToken, callbackURL: "/bye" }),
    redirect: ["callbackURL"],
    states: SESSION_STATES,
  },
  {
    method: "POST",
    path: "/request-password-reset",
    body: (f) => ({ email: f.email, redirectTo: "/reset" }),
    redirect: ["redirectTo"],
    states: ["none", "session"],
  },
  {
    method: "GET",
    path: (f) => `/reset-password/${f.resetToken}`,
    label: "/reset-password/:token",
    query: () => ({ callbackURL: "/reset" }),
    redirect: ["callbackURL"],
    states: ["none"],
  },
  {
    method: "POST",
    path: "/reset-password",
    body: (f) => ({ newPassword: "new-password-123", token: f.resetToken }),
    states: ["none", "session"],
  },
  {
    method: "POST",
    path: "/send-verification-email",
    body: (f) => ({ email: f.email, callbackURL: "/verified" }),
    redirect: ["callbackURL"],
    states: ["none", "session", "unverified"],
  },
  {
    method: "GET",
    path: "/verify-email",
    query: (f) => ({ token: f.verifyJwt, callbackURL: "/verified" }),
    redirect: ["callbackURL"],
    states: ["none", "session", "unverified"],
    ip: true,
  },
  { method: "GET", path: "/list-accounts", states: SESSION_STATES },
  {
    method: "POST",
    path: "/sign-up/email",
    body: (f) => ({ name: "New User", email: f.freshEmail, password: f.password }),
    optional: { image: "https://example.com/b.png", callbackURL: "/welcome", rememberMe: false },
    redirect: ["callbackURL"],
    form: true,
    ip: true,
    states: ["none", "session"],
  },
  {
    method: "POST",
    path: "/sign-in/email",
    body: (f) => ({ email: f.email, password: f.password }),
    optional: { callbackURL: "/home", rememberMe: false },
    redirect: ["callbackURL"],
    form: true,
    ip: true,
    states: ["none", "session", "session2fa", "unverified"],
  },
  // Server-only in Better Auth: both must answer 404 over HTTP.
  { method: "POST", path: "/set-password", body: () => ({ newPassword: "new-password-123" }), states: ["session"] },
  // Two-factor.
  { method: "POST", path: "/two-factor/enable", body: (f) => ({ password: f.password }), states: TWO_FACTOR_STATES },
  { method: "POST", path: "/two-factor/disable", body: (f) => ({ password: f.password }), states: TWO_FACTOR_STATES },
  { method: "POST", path: "/two-factor/get-totp-uri", body: (f) => ({ password: f.password }), states: TWO_FACTOR_STATES },
  {
    method: "POST",
    path: "/two-factor/verify-totp",
    body: (f) => ({ code: f.totp }),
    optional: { trustDevice: true },
    ip: true,
    states: TWO_FACTOR_STATES,
  },
  { method: "POST", path: "/two-factor/send-otp", body: () => ({}), states: TWO_FACTOR_STATES },
  { method: "POST", path: "/two-factor/verify-otp", body: () => ({ code: "000000" }), states: TWO_FACTOR_STATES },
  {
    method: "POST",
    path: "/two-factor/verify-backup-code",
    body: (f) => ({ code: f.backupCodes[0] }),
    optional: { disableSession: true, trustDevice: true },
    ip: true,
    states: TWO_FACTOR_STATES,
  },
  {
    method: "POST",
    path: "/two-factor/generate-backup-codes",
    body: (f) => ({ password: f.password }),
    states: TWO_FACTOR_STATES,
  },
  { method: "POST", path: "/two-factor/view-backup-codes", body: (f) => ({ userId: f.userId }), states: ["session2fa"] },
];

// ---------------------------------------------------------------------------------------------
// Variants. Each is a name and a change to the base request (see lib.mjs `buildRequest`).

const LONG = "x".repeat(5000);
const wrongTypes = (v) => {
  const out = [
    ["null", null],
    ["number", 42],
    ["bool", true],
    ["array", []],
    ["object", {}],
  ];
  if (typeof v !== "string") out.push(["string", "yes"]);
  if (typeof v === "string") out.push(["empty", ""], ["long", LONG], ["spaces", "   "]);
  if (typeof v === "boolean") out.push(["string-false", "false"]);
  return out;
};

const REDIRECTS = [
  ["relative", "/next"],
  ["relative-query", "/next?a=1&b=2"],
  ["bare", "next"],
  ["same-origin", "{origin}/next"],
  ["protocol-relative", "//evil.example/next"],
  ["untrusted", "http://evil.example/next"],
  ["lookalike", "http://127.0.0.1.evil.example/next"],
  ["backslash", "/\\evil.example"],
  ["javascript", "javascript:alert(1)"],
  ["encoded-slashes", "%2F%2Fevil.example"],
  ["userinfo", "http://127.0.0.1@evil.example/"],
  ["empty", ""],
];

const CONTENT_TYPES = [
  ["json-charset", (r) => (r.contentType = "application/json; charset=utf-8")],
  ["json-upper", (r) => (r.contentType = "Application/JSON")],
  ["json-suffix", (r) => (r.contentType = "application/vnd.api+json")],
  ["form", (r) => ((r.contentType = "application/x-www-form-urlencoded"), (r.encoding = "form"))],
  ["form-charset", (r) => ((r.contentType = "application/x-www-form-urlencoded; charset=UTF-8"), (r.encoding = "form"))],
  ["text-plain", (r) => (r.contentType = "text/plain")],
  ["multipart", (r) => ((r.contentType = "multipart/form-data; boundary=wirediff"), (r.encoding = "multipart"))],
  ["no-content-type", (r) => (r.contentType = null)],
];

const BODIES = [
  ["malformed-json", '{"a":'],
  ["empty-body", ""],
  ["json-array", "[]"],
  ["json-string", '"x"'],
  ["json-null", "null"],
  ["json-number", "1"],
  ["json-trailing", '{"a":1} x'],
  ["json-bom", '\ufeff{"a":1}'],
];

const PATHS = [
  ["trailing-slash", (p) => `${p}/`],
  ["double-slash", (p) => p.replace(BASE_PATH, `${BASE_PATH}/`)],
  ["upper-case", (p) => p.replace(BASE_PATH, "").toUpperCase().replace(/^/, BASE_PATH)],
  ["percent-encoded", (p) => BASE_PATH + p.slice(BASE_PATH.length).replace(/-/, "%2D").replace(/\/([a-z])/, (_, c) => `/%${c.charCodeAt(0).toString(16)}`)],
  ["dot-segment", (p) => p.replace(BASE_PATH, `${BASE_PATH}/.`)],
  ["bare-base", () => BASE_PATH],
  ["base-slash", () => `${BASE_PATH}/`],
  ["query-only-mark", (p) => `${p}?`],
];

const METHODS_FOR_POST = ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"];
const METHODS_FOR_GET = ["POST", "PUT", "DELETE", "OPTIONS", "HEAD"];

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const COOKIES = [
  ["raw", (f) => `${COOKIE}=${f.cookieValue}`],
  ["lower-escapes", (f) => `${COOKIE}=${encodeURIComponent(f.cookieValue).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())}`],
  ["quoted", (f) => `${COOKIE}="${encodeURIComponent(f.cookieValue)}"`],
  ["duplicate-bogus-first", (f) => `${COOKIE}=bogus; ${COOKIE}=${encodeURIComponent(f.cookieValue)}`],
  ["duplicate-bogus-last", (f) => `${COOKIE}=${encodeURIComponent(f.cookieValue)}; ${COOKIE}=bogus`],
  // The signature's first character changed: a wrong signature, not a non-canonical spelling of
  // the right one (the last character before `=` carries padding bits).
  ["bad-signature", (f) => `${COOKIE}=${encodeURIComponent(f.cookieValue.replace(/\.(.)/, (_, c) => `.${c === "A" ? "B" : "A"}`))}`],
  // The same signature bytes spelled with non-zero padding bits in the last base64 character.
  ["non-canonical-signature", (f) => `${COOKIE}=${encodeURIComponent(f.cookieValue.replace(/(.)=$/, (_, c) => `${B64[B64.indexOf(c) ^ 1]}=`))}`],
  ["unsigned", (f) => `${COOKIE}=${f.token}`],
  ["stray-cache", (f) => `${COOKIE}=${encodeURIComponent(f.cookieValue)}; better-auth.session_data=garbage`],
  ["stray-dont-remember", (f) => `${COOKIE}=${encodeURIComponent(f.cookieValue)}; better-auth.dont_remember=true.bogus`],
  ["no-spaces", (f) => `a=1;${COOKIE}=${encodeURIComponent(f.cookieValue)};b=2`],
  ["secure-prefix", (f) => `__Secure-${COOKIE}=${encodeURIComponent(f.cookieValue)}`],
  ["empty-value", () => `${COOKIE}=`],
];

// The bearer plugin: the session in `Authorization` instead of the cookie (a client that keeps
// no cookies), in the spellings Better Auth accepts and two it ignores.
const BEARERS = [
  ["signed", (f) => `Bearer ${f.cookieValue}`],
  ["encoded", (f) => `Bearer ${encodeURIComponent(f.cookieValue)}`],
  ["lower-scheme", (f) => `bearer ${f.cookieValue}`],
  ["unsigned", (f) => `Bearer ${f.token}`],
  ["bad-signature", (f) => `Bearer ${f.cookieValue.replace(/\.(.)/, (_, c) => `.${c === "A" ? "B" : "A"}`)}`],
  ["basic-scheme", (f) => `Basic ${f.cookieValue}`],
];

const ORIGINS = [
  ["origin-none", (r) => delete r.headers.origin],
  ["origin-untrusted", (r) => (r.headers.origin = "http://evil.example")],
  ["origin-null", (r) => (r.headers.origin = "null")],
  ["origin-trailing-slash", (r) => (r.headers.origin = `${r.origin}/`)],
  ["origin-upper", (r) => (r.headers.origin = r.origin.toUpperCase())],
  ["referer-trusted", (r) => (delete r.headers.origin, (r.headers.referer = `${r.origin}/page`))],
  ["referer-untrusted", (r) => (delete r.headers.origin, (r.headers.referer = "http://evil.example/page"))],
  ["fetch-cross-site-navigate", (r) => (delete r.headers.origin, (r.headers["sec-fetch-site"] = "cross-site"), (r.headers["sec-fetch-mode"] = "navigate"))],
  ["fetch-same-origin", (r) => (delete r.headers.origin, (r.headers["sec-fetch-site"] = "same-origin"), (r.headers["sec-fetch-mode"] = "cors"))],
  ["fetch-cors-no-origin", (r) => (delete r.headers.origin, (r.headers["sec-fetch-mode"] = "cors"))],
  ["fetch-cross-site-with-origin", (r) => ((r.headers["sec-fetch-site"] = "cross-site"), (r.headers["sec-fetch-mode"] = "navigate"))],
];

const FORWARDED = [
  ["xff-none", (r) => delete r.headers["x-forwarded-for"]],
  ["xff-multi-hop", (r) => (r.headers["x-forwarded-for"] = "198.51.100.7, 203.0.113.9")],
  ["xff-ipv6", (r) => (r.headers["x-forwarded-for"] = "2001:db8::1")],
  ["xff-ipv6-long", (r) => (r.headers["x-forwarded-for"] = "2001:0DB8:0000:0000:0000:0000:0000:0001")],
  ["xff-ipv6-bracket-port", (r) => (r.headers["x-forwarded-for"] = "[2001:db8::1]:443")],
  ["xff-mapped", (r) => (r.headers["x-forwarded-for"] = "::ffff:198.51.100.7")],
  ["xff-port", (r) => (r.headers["x-forwarded-for"] = "198.51.100.7:8080")],
  ["xff-garbage", (r) => (r.headers["x-forwarded-for"] = "not-an-ip")],
  ["xff-empty", (r) => (r.headers["x-forwarded-for"] = "")],
];

const DUMMY = new Proxy({}, { get: (_, k) => (k === "backupCodes" ? ["x"] : `<${String(k)}>`) });

/** Every variant of one endpoint in one state, each `{name, apply(request, fixture)}`. */
function variants(ep, state) {
  const out = [{ name: "valid", apply: () => {} }];
  const isPost = ep.method === "POST";
  const fieldsOf = ep.body ? Object.keys(ep.body(DUMMY)) : Object.keys(ep.query ? ep.query(DUMMY) : {});
  const where = ep.body ? "body" : "query";
  for (const field of fieldsOf) {
    const sample = ep.body ? ep.body(DUMMY)[field] : "x";
    out.push({ name: `${field}:missing`, apply: (r) => delete r[where][field] });
    const kinds = ep.body ? wrongTypes(sample) : [["empty", ""], ["long", LONG], ["repeated", ["a", "b"]]];
    for (const [kind, value] of kinds) out.push({ name: `${field}:${kind}`, apply: (r) => (r[where][field] = value) });
  }
  for (const [field, value] of Object.entries(ep.optional || {})) {
    out.push({ name: `+${field}`, apply: (r) => (r[where][field] = value) });
    if (ep.body) {
      for (const [kind, v] of wrongTypes(value)) out.push({ name: `+${field}:${kind}`, apply: (r) => (r[where][field] = v) });
    }
  }
  for (const field of ep.redirect || []) {
    for (const [kind, value] of REDIRECTS) {
      out.push({ name: `${field}=${kind}`, apply: (r) => (r[where][field] = value.replace("{origin}", r.origin)) });
    }
  }
  if (ep.body) {
    out.push({ name: "extra-field", apply: (r) => (r.body.somethingElse = "x") });
    out.push({ name: "server-owned", apply: (r) => Object.assign(r.body, { id: "x".repeat(32), emailVerified: true, createdAt: "2020-01-01T00:00:00.000Z", userId: "someone-else" }) });
    out.push({ name: "proto-key", apply: (r) => (r.rawBody = JSON.stringify(r.body).replace(/^\{/, '{"__proto__":{"x":1},')) });
    for (const [name, apply] of CONTENT_TYPES) out.push({ name: `ct:${name}`, apply });
    for (const [name, raw] of BODIES) out.push({ name: `body:${name}`, apply: (r) => (r.rawBody = raw) });
    out.push({ name: "body:none", apply: (r) => ((r.rawBody = undefined), (r.noBody = true), (r.contentType = null)) });
    out.push({ name: "body:none-json-type", apply: (r) => ((r.rawBody = undefined), (r.noBody = true)) });
  }
  for (const m of isPost ? METHODS_FOR_POST : METHODS_FOR_GET) {
    out.push({ name: `method:${m}`, apply: (r) => (r.method = m) });
  }
  for (const [name, change] of PATHS) out.push({ name: `path:${name}`, apply: (r) => (r.path = change(r.path)) });
  out.push({ name: "query:extra", apply: (r) => (r.query.unexpected = "1") });
  if (["session", "session2fa", "expired", "stale", "unverified", "deleted"].includes(state)) {
    for (const [name, cookie] of COOKIES) out.push({ name: `cookie:${name}`, apply: (r, f) => (r.cookie = cookie(f)) });
    for (const [name, bearer] of BEARERS) {
      out.push({ name: `bearer:${name}`, apply: (r, f) => ((r.cookie = undefined), (r.headers.authorization = bearer(f))) });
    }
  }
  if (isPost) for (const [name, apply] of ORIGINS) out.push({ name: `csrf:${name}`, apply });
  if (ep.ip) for (const [name, apply] of FORWARDED) out.push({ name, apply });
  return out;
}

/** The whole corpus, in a fixed order. */
export function corpus() {
  const out = [];
  for (const ep of ENDPOINTS) {
    for (const state of ep.states) {
      for (const v of variants(ep, state)) {
        out.push({ id: `${ep.method} ${ep.label || ep.path} [${state}] ${v.name}`, ep, state, variant: v });
      }
    }
  }
  return out;
}
