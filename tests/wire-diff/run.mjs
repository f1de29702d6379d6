// The differential harness: Better Auth 1.7.25 and Portcullis side by side, the same request in
// the same state to both, every answer compared after normalisation by shape.
//
//   node run.mjs --portcullis <binary> [--sample N] [--seed S] [--filter REGEX] [--concurrency K]
//                [--report FILE] [--show K]
//
// Exit status 0 when every difference is listed in DIVERGENCES.md, 1 otherwise.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import {
  BASE_PATH,
  COOKIE,
  World,
  applySetCookies,
  freePort,
  here,
  normalise,
  parseCookieHeader,
  readDivergences,
  render,
  rng,
  send,
  sideBySide,
  start,
  totp,
  waitFor,
} from "./lib.mjs";
import { corpus } from "./corpus.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const SAMPLE = opt("sample") ? Number(opt("sample")) : Infinity;
const SEED = opt("seed", "1");
const FILTER = opt("filter") ? new RegExp(opt("filter")) : null;
const CONCURRENCY = Number(opt("concurrency", "4"));
const SHOW = Number(opt("show", "12"));
const PORTCULLIS = opt("portcullis");
const DIVERGENCES = opt("divergences", path.join(here, "DIVERGENCES.md"));
if (!PORTCULLIS) throw new Error("--portcullis <path to the portcullis binary> is required");

const work = fs.mkdtempSync(path.join(os.tmpdir(), "wire-diff-"));
const REPORT = opt("report", path.join(work, "report.txt"));
const secret = crypto.randomBytes(24).toString("hex");
const refPort = await freePort();
const pcPort = await freePort();

const children = [];
const stopAll = () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
};
process.on("exit", stopAll);
process.on("SIGINT", () => process.exit(130));

children.push(
  start(
    "reference",
    process.execPath,
    [path.join(here, "reference.mjs")],
    { PORT: String(refPort), DATABASE_PATH: path.join(work, "reference.db"), OUTBOX_FILE: path.join(work, "reference-outbox.jsonl"), BETTER_AUTH_SECRET: secret },
    path.join(work, "reference.log"),
  ),
);
const pcData = path.join(work, "portcullis");
fs.mkdirSync(pcData);
fs.writeFileSync(
  path.join(pcData, "portcullis.toml"),
  fs.readFileSync(path.join(here, "portcullis.toml"), "utf8"),
);
// `--portcullis reference` runs Better Auth against itself: the harness's own check that what it
// compares is deterministic (it must report nothing).
children.push(
  PORTCULLIS === "reference"
    ? start(
        "portcullis",
        process.execPath,
        [path.join(here, "reference.mjs")],
        { PORT: String(pcPort), DATABASE_PATH: path.join(pcData, "portcullis.db"), OUTBOX_FILE: path.join(work, "portcullis-outbox.jsonl"), BETTER_AUTH_SECRET: secret },
        path.join(work, "portcullis.log"),
      )
    : start(
    "portcullis",
    PORTCULLIS,
    [
      "serve",
      "--config", path.join(pcData, "portcullis.toml"),
      "--host", "127.0.0.1",
      "--port", String(pcPort),
      "--base-url", `http://127.0.0.1:${pcPort}`,
      "--database", `sqlite://${path.join(pcData, "portcullis.db")}`,
      "--ip-header", "x-forwarded-for",
      "--rate-limit", "false",
    ],
    { PORTCULLIS_SECRET: secret, OUTBOX_FILE: path.join(work, "portcullis-outbox.jsonl"), RUST_LOG: "warn" },
    path.join(work, "portcullis.log"),
  ),
);
await Promise.all([
  waitFor(`http://127.0.0.1:${refPort}${BASE_PATH}/ok`, children[0], "reference"),
  waitFor(`http://127.0.0.1:${pcPort}${BASE_PATH}/ok`, children[1], "portcullis"),
]);

const world = new World(secret);
await world.init();
world.attach("better-auth", refPort, path.join(work, "reference.db"));
world.attach("portcullis", pcPort, path.join(pcData, "portcullis.db"));

// The sample: every valid request, then the rest in a seeded order.
let cases = corpus();
const total = cases.length;
if (FILTER) cases = cases.filter((c) => FILTER.test(c.id));
if (Number.isFinite(SAMPLE) && cases.length > SAMPLE) {
  const r = rng(`sample:${SEED}`);
  const keyed = cases.map((c) => ({ c, k: c.variant.name === "valid" ? -1 : r() }));
  keyed.sort((a, b) => a.k - b.k);
  cases = keyed.slice(0, SAMPLE).map((x) => x.c);
}

const divergences = readDivergences(DIVERGENCES);

function baseRequest(kase, f, side, challenge) {
  const ep = kase.ep;
  const r = {
    origin: side.origin,
    method: ep.method,
    path: BASE_PATH + (typeof ep.path === "function" ? ep.path(f) : ep.path),
    query: ep.query ? ep.query(f) : {},
    headers: { "user-agent": "wire-diff", "x-forwarded-for": "203.0.113.9", accept: "*/*" },
    body: ep.body ? ep.body(f) : undefined,
    encoding: "json",
    contentType: ep.body ? "application/json" : null,
    cookie: undefined,
  };
  if (ep.method === "POST") r.headers.origin = side.origin;
  if (f.cookieValue) r.cookie = `${COOKIE}=${encodeURIComponent(f.cookieValue)}`;
  if (challenge) r.cookie = challenge;
  return r;
}

function serialise(r) {
  const headers = { ...r.headers };
  let body;
  if (r.rawBody !== undefined) body = r.rawBody;
  else if (r.noBody || r.body === undefined) body = undefined;
  else if (r.encoding === "form") {
    body = new URLSearchParams(Object.entries(r.body).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])).toString();
  } else if (r.encoding === "multipart") {
    body = "";
    for (const [k, v] of Object.entries(r.body)) {
      body += `--wirediff\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${typeof v === "string" ? v : JSON.stringify(v)}\r\n`;
    }
    body += "--wirediff--\r\n";
  } else body = JSON.stringify(r.body);
  if (["GET", "HEAD", "OPTIONS"].includes(r.method)) body = undefined;
  if (body !== undefined && r.contentType) headers["content-type"] = r.contentType;
  if (r.cookie !== undefined) headers.cookie = r.cookie;
  const entries = Object.entries(r.query).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]));
  const qs = new URLSearchParams(entries).toString();
  const p = qs ? `${r.path}${r.path.includes("?") ? "&" : "?"}${qs}` : r.path;
  return { method: r.method, path: p, headers, body };
}

async function challengeCookie(side, f) {
  const res = await send({
    port: side.port,
    method: "POST",
    path: `${BASE_PATH}/sign-in/email`,
    headers: { "content-type": "application/json", origin: side.origin, "x-forwarded-for": "203.0.113.9", "user-agent": "wire-diff" },
    body: JSON.stringify({ email: f.email, password: f.password }),
  });
  const jar = applySetCookies([], res.headers["set-cookie"]);
  if (!jar.some(([n]) => n.endsWith("two_factor"))) {
    throw new Error(`${side.name}: sign-in of a two-factor user set no two_factor cookie: ${res.status} ${res.body}`);
  }
  return jar.map(([n, v]) => `${n}=${v}`).join("; ");
}

async function runOn(side, kase, f) {
  const challenge = kase.state === "challenge" ? await challengeCookie(side, f) : undefined;
  const r = baseRequest(kase, f, side, challenge);
  kase.variant.apply(r, f);
  const req = serialise(r);
  const sentAt = Date.now();
  const res = await send({ port: side.port, ...req });
  const jar = applySetCookies(parseCookieHeader(req.headers.cookie), res.headers["set-cookie"]);
  const effect = await send({
    port: side.port,
    method: "GET",
    path: `${BASE_PATH}/get-session`,
    headers: {
      "user-agent": "wire-diff",
      "x-forwarded-for": "203.0.113.9",
      ...(jar.length ? { cookie: jar.map(([n, v]) => `${n}=${v}`).join("; ") } : {}),
    },
  });
  return { req, res, effect, sentAt };
}

function keepOf(f) {
  return [
    f.userId, f.email, f.freshEmail, f.token, f.otherToken, f.sessionId, f.otherSessionId, f.resetToken,
    f.deleteToken, f.verifyJwt, f.cookieValue, f.cookieValue && encodeURIComponent(f.cookieValue), f.totpSecret,
    ...f.backupCodes,
  ];
}

const results = { same: 0, listed: 0, pending: 0, differ: [], errors: [] };
for (const kase of cases) kase.fixture = world.fixture(kase.id, kase.state);
world.flush();

async function runCase(kase) {
  const f = kase.fixture;
  f.totp = totp(f.totpSecret);
  const [a, b] = await Promise.all(world.sides.map((s) => runOn(s, kase, f)));
  const keep = keepOf(f);
  const na = normalise(render(a.res, a.effect), { origin: world.sides[0].origin, keep, sentAt: a.sentAt });
  const nb = normalise(render(b.res, b.effect), { origin: world.sides[1].origin, keep, sentAt: b.sentAt });
  const datesAgree = na.offsets.length === nb.offsets.length && na.offsets.every((x, i) => Math.abs(x - nb.offsets[i]) <= 5);
  if (na.text === nb.text && datesAgree) {
    results.same++;
    return;
  }
  // Better Auth sometimes sends two Set-Cookie lines for one cookie; a difference only there
  // is the entry `@duplicate-set-cookie` of DIVERGENCES.md, when it has one.
  const dup = divergences.find((d) => d.pattern === "@duplicate-set-cookie");
  if (dup) {
    const ca = normalise(render(a.res, a.effect, { lastCookieOnly: true }), { origin: world.sides[0].origin, keep, sentAt: a.sentAt });
    const cb = normalise(render(b.res, b.effect, { lastCookieOnly: true }), { origin: world.sides[1].origin, keep, sentAt: b.sentAt });
    const sameDates = ca.offsets.length === cb.offsets.length && ca.offsets.every((x, i) => Math.abs(x - cb.offsets[i]) <= 5);
    if (ca.text === cb.text && sameDates) {
      dup.used++;
      results.listed++;
      return;
    }
  }
  const listed = divergences.find((d) => d.re.test(kase.id));
  if (listed) {
    listed.used++;
    if (listed.pending) results.pending++;
    else results.listed++;
    return;
  }
  let text = na.text;
  let textB = nb.text;
  if (!datesAgree) {
    text += `\ndate offsets (s): ${na.offsets.join(", ")}`;
    textB += `\ndate offsets (s): ${nb.offsets.join(", ")}`;
  }
  results.differ.push({ id: kase.id, request: a.req, better: text, portcullis: textB });
}

const started = Date.now();
let next = 0;
let done = 0;
async function worker() {
  while (next < cases.length) {
    const kase = cases[next++];
    try {
      await runCase(kase);
    } catch (e) {
      results.errors.push({ id: kase.id, error: String(e && e.stack ? e.stack : e) });
    }
    done++;
    if (done % 500 === 0) console.log(`  ${done}/${cases.length} cases (${Math.round((Date.now() - started) / 1000)} s)`);
  }
}
console.log(`wire-diff: ${cases.length} of ${total} cases (seed ${SEED}), Better Auth on :${refPort}, Portcullis on :${pcPort}`);
await Promise.all(Array.from({ length: CONCURRENCY }, worker));

const out = [];
for (const d of results.differ) {
  out.push(`=== ${d.id}`);
  out.push(`${d.request.method} ${d.request.path}`);
  for (const [k, v] of Object.entries(d.request.headers)) out.push(`${k}: ${v}`);
  if (d.request.body !== undefined) out.push(`\n${d.request.body.length > 300 ? `${d.request.body.slice(0, 300)}…` : d.request.body}`);
  out.push(`\n${"Better Auth 1.7.25".padEnd(78)}   Portcullis`);
  out.push(sideBySide(d.better, d.portcullis));
  out.push("");
}
for (const e of results.errors) out.push(`=== ERROR ${e.id}\n${e.error}\n`);
fs.writeFileSync(REPORT, out.join("\n"));

const blocks = out.join("\n").split(/(?==== )/);
if (results.differ.length || results.errors.length) {
  console.log(blocks.slice(0, SHOW).join(""));
  const byFamily = new Map();
  for (const d of results.differ) {
    const family = d.id.replace(/ \[.*?\] /, " [*] ").replace(/:(missing|null|number|bool|array|object|string|empty|long|spaces|string-false)$/, ":…");
    byFamily.set(family, (byFamily.get(family) || 0) + 1);
  }
  console.log("differences by family:");
  for (const [k, v] of [...byFamily].sort((x, y) => y[1] - x[1])) console.log(`  ${String(v).padStart(5)}  ${k}`);
}
const unused = divergences.filter((d) => d.used === 0);
console.log(
  `wire-diff: ${cases.length} cases in ${Math.round((Date.now() - started) / 1000)} s: ${results.same} identical, ` +
    `${results.listed} deliberate (DIVERGENCES.md), ${results.pending} known and not fixed yet, ` +
    `${results.differ.length} unexplained differences, ${results.errors.length} errors` +
    (unused.length && !FILTER && !Number.isFinite(SAMPLE) ? `; entries that matched nothing: ${unused.map((d) => d.pattern).join(", ")}` : ""),
);
console.log(`report: ${REPORT}`);
stopAll();
process.exit(results.differ.length || results.errors.length ? 1 : 0);
