// The machinery of the differential harness: the two servers, the raw HTTP client, the state
// both servers are brought into, the normalisation by shape and the comparison. What is sent
// lives in corpus.mjs.
import http from "node:http";
import net from "node:net";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { spawn } from "node:child_process";
import Database from "better-sqlite3";
import { symmetricEncrypt } from "better-auth/crypto";

export const BASE_PATH = "/api/auth";
export const PASSWORD = "correct-horse-battery";
export const COOKIE = "better-auth.session_token";

// ---------------------------------------------------------------------------------------------
// Seeded randomness: every case is a function of (seed, case id), so a run is reproducible and a
// sample is a subset of the whole corpus.

export function rng(seedText) {
  let h = crypto.createHash("sha256").update(String(seedText)).digest();
  let i = 0;
  return () => {
    if (i + 4 > h.length) {
      h = crypto.createHash("sha256").update(h).digest();
      i = 0;
    }
    const v = h.readUInt32LE(i);
    i += 4;
    return v / 2 ** 32;
  };
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
export function alnum(rand, n) {
  let s = "";
  for (let i = 0; i < n; i++) s += ALNUM[Math.floor(rand() * ALNUM.length)];
  return s;
}

// ---------------------------------------------------------------------------------------------
// The servers.

/** A port nothing listens on now: the OS picks it (a random guess once hit epmd's 4369). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor(url, child, name, timeoutMs = 120_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before answering`);
    try {
      const r = await send({ port: new URL(url).port, method: "GET", path: new URL(url).pathname, headers: {} });
      if (r.status === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} did not answer ${url} in ${timeoutMs} ms`);
}

export function start(name, cmd, args, env, logFile) {
  const log = fs.openSync(logFile, "w");
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", log, log] });
  child.name = name;
  return child;
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP: node:http sends exactly the path and headers given (fetch would normalise the path and
// add Sec-Fetch headers of its own).

const agents = new Map();
export function send({ port, method, path: p, headers, body }) {
  let agent = agents.get(port);
  if (!agent) {
    agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    agents.set(port, agent);
  }
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (body !== undefined) h["content-length"] = Buffer.byteLength(body);
    const req = http.request({ host: "127.0.0.1", port, method, path: p, headers: h, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode, headers: res.headers, raw: res.rawHeaders, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${method} ${p}`)));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// Signing, as both servers do it: `value.base64(HMAC-SHA256(secret, value))`, URI-encoded.

export function signed(secret, value) {
  return `${value}.${crypto.createHmac("sha256", secret).update(value).digest("base64")}`;
}

export function totp(secretText, at = Date.now(), step = 0) {
  const counter = Math.floor(at / 1000 / 30) + step;
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(BigInt(counter));
  const mac = crypto.createHmac("sha1", Buffer.from(secretText, "utf8")).update(buf).digest();
  const o = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(o) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, "0");
}

export function verifyEmailJwt(secret, payload) {
  const b64 = (x) => Buffer.from(JSON.stringify(x)).toString("base64url");
  const head = b64({ alg: "HS256" });
  const body = b64(payload);
  const sig = crypto.createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

// ---------------------------------------------------------------------------------------------
// State. Both servers use Better Auth's schema, so the same rows go into both databases: the
// same ids, tokens, hashes and ciphertexts. Values a server generates itself (a new session, a
// challenge) are then the only ones that differ, and those are normalised by shape.

export class World {
  constructor(secret) {
    this.secret = secret;
    this.sides = [];
    this.pending = [];
  }

  async init() {
    const salt = crypto.randomBytes(16).toString("hex");
    const key = crypto.scryptSync(PASSWORD.normalize("NFKC"), salt, 64, { N: 16384, r: 16, p: 1, maxmem: 128 * 16384 * 16 * 2 });
    this.hash = `${salt}:${key.toString("hex")}`;
    this.totpSecret = alnum(rng("totp"), 32);
    this.backupCodes = Array.from({ length: 10 }, (_, i) => {
      const r = rng(`backup${i}`);
      return `${alnum(r, 5)}-${alnum(r, 5)}`;
    });
    this.encSecret = await symmetricEncrypt({ key: this.secret, data: this.totpSecret });
    this.encCodes = await symmetricEncrypt({ key: this.secret, data: JSON.stringify(this.backupCodes) });
  }

  attach(name, port, dbFile) {
    const db = new Database(dbFile);
    db.pragma("busy_timeout = 10000");
    this.sides.push({ name, port, origin: `http://127.0.0.1:${port}`, db });
  }

  /**
   * Writes every fixture made so far into both databases. All fixtures are written before the
   * first request: a row written while a server's transaction is open can make SQLite refuse that
   * transaction (SQLITE_BUSY_SNAPSHOT), which would show up as a difference of neither server.
   */
  flush() {
    for (const side of this.sides) {
      const stmts = new Map();
      side.db.transaction(() => {
        for (const [sql, args] of this.pending) {
          if (!stmts.has(sql)) stmts.set(sql, side.db.prepare(sql));
          stmts.get(sql).run(...args);
        }
      })();
    }
    this.pending = [];
  }

  /** Rows for one case: its own user(s), so no case sees another's writes. */
  fixture(caseId, state) {
    const rand = rng(`fixture:${caseId}`);
    const now = Date.now();
    const iso = (ms) => new Date(ms).toISOString();
    const stale = state === "stale";
    const f = {
      state,
      userId: alnum(rand, 32),
      email: `u${alnum(rand, 10).toLowerCase()}@example.com`,
      freshEmail: `n${alnum(rand, 10).toLowerCase()}@example.com`,
      name: "Wire Diff",
      token: alnum(rand, 32),
      sessionId: alnum(rand, 32),
      otherToken: alnum(rand, 32),
      otherSessionId: alnum(rand, 32),
      resetToken: alnum(rand, 24),
      deleteToken: alnum(rand, 32),
      twoFactor: ["session2fa", "challenge"].includes(state),
      verified: state !== "unverified",
      totpSecret: this.totpSecret,
      backupCodes: this.backupCodes,
      password: PASSWORD,
    };
    const created = stale ? now - 2 * 86400_000 : now - 60_000;
    const rows = [
      [
        `insert into "user" (id, name, email, emailVerified, image, createdAt, updatedAt, twoFactorEnabled) values (?,?,?,?,?,?,?,?)`,
        [f.userId, f.name, f.email, f.verified ? 1 : 0, null, iso(created), iso(created), f.twoFactor ? 1 : 0],
      ],
      [
        `insert into account (id, accountId, providerId, userId, password, createdAt, updatedAt) values (?,?,?,?,?,?,?)`,
        [alnum(rand, 32), f.userId, "credential", f.userId, this.hash, iso(created), iso(created)],
      ],
      [
        `insert into verification (id, identifier, value, expiresAt, createdAt, updatedAt) values (?,?,?,?,?,?)`,
        [alnum(rand, 32), `reset-password:${f.resetToken}`, f.userId, iso(now + 6 * 3600_000), iso(now - 1000), iso(now - 1000)],
      ],
      [
        `insert into verification (id, identifier, value, expiresAt, createdAt, updatedAt) values (?,?,?,?,?,?)`,
        [alnum(rand, 32), `delete-account-${f.deleteToken}`, f.userId, iso(now + 86400_000), iso(now - 1000), iso(now - 1000)],
      ],
    ];
    const withSession = ["session", "session2fa", "expired", "stale", "unverified"].includes(state);
    if (withSession) {
      const expires = state === "expired" ? now - 3600_000 : created + 7 * 86400_000;
      rows.push([
        `insert into session (id, expiresAt, token, createdAt, updatedAt, ipAddress, userAgent, userId) values (?,?,?,?,?,?,?,?)`,
        [f.sessionId, iso(expires), f.token, iso(created), iso(created), "203.0.113.1", "wire-diff", f.userId],
      ]);
      rows.push([
        `insert into session (id, expiresAt, token, createdAt, updatedAt, ipAddress, userAgent, userId) values (?,?,?,?,?,?,?,?)`,
        // Made after the client's session, as sessions are: insertion order is creation order.
        [f.otherSessionId, iso(now + 7 * 86400_000), f.otherToken, iso(now - 30_000), iso(now - 30_000), "203.0.113.2", "other", f.userId],
      ]);
    }
    if (f.twoFactor) {
      rows.push([
        `insert into "twoFactor" (id, secret, backupCodes, userId, verified, failedVerificationCount) values (?,?,?,?,?,?)`,
        [alnum(rand, 32), this.encSecret, this.encCodes, f.userId, 1, 0],
      ]);
    }
    this.pending.push(...rows);
    if (withSession || state === "deleted") {
      f.cookieValue = signed(this.secret, f.token);
    }
    f.verifyJwt = verifyEmailJwt(this.secret, { email: f.email, iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 3600 });
    return f;
  }
}

// ---------------------------------------------------------------------------------------------
// Cookies the client keeps between the case's request and the get-session that checks its effect.

export function parseCookieHeader(header) {
  const jar = [];
  for (const part of (header || "").split(";")) {
    const i = part.indexOf("=");
    if (i < 0) continue;
    jar.push([part.slice(0, i).trim(), part.slice(i + 1).trim()]);
  }
  return jar;
}

export function applySetCookies(jar, setCookies) {
  const out = jar.filter(([n]) => n);
  for (const line of setCookies || []) {
    const [pair, ...attrs] = line.split(";");
    const i = pair.indexOf("=");
    const name = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    const expired = attrs.some((a) => {
      const [k, v] = a.split("=").map((s) => s.trim());
      if (/^max-age$/i.test(k)) return Number(v) <= 0;
      if (/^expires$/i.test(k)) return Date.parse(v) <= Date.now();
      return false;
    });
    for (let k = out.length - 1; k >= 0; k--) if (out[k][0] === name) out.splice(k, 1);
    if (!expired && value !== "") out.push([name, value]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Normalisation by shape. Fixture values are the same on both sides and stay as they are; what a
// server generated is replaced by a placeholder naming its shape and the order of its first
// appearance, so equal values stay equal (the cookie's token is the body's token) and a token of
// another length or alphabet stays different. Dates become their offset from the request.

export const HEADERS = [
  "content-type",
  "cache-control",
  "pragma",
  "location",
  "set-auth-token",
  "access-control-expose-headers",
  "x-retry-after",
  "set-cookie",
];

export function normalise(doc, { origin, keep, sentAt }) {
  let text = doc.split(origin).join("{origin}").split(encodeURIComponent(origin)).join("{origin:enc}");
  const protectedValues = [...keep].filter((v) => v && v.length >= 6).sort((a, b) => b.length - a.length);
  const saved = [];
  for (const v of protectedValues) {
    if (!text.includes(v)) continue;
    text = text.split(v).join(`\u0000${saved.length}\u0000`);
    saved.push(v);
  }
  const names = new Map();
  const counters = new Map();
  const name = (shape, value) => {
    const k = `${shape}\u0001${value}`;
    if (!names.has(k)) {
      const n = (counters.get(shape) || 0) + 1;
      counters.set(shape, n);
      names.set(k, `<${shape}#${n}>`);
    }
    return names.get(k);
  };
  const offsets = [];
  const offset = (ms) => {
    offsets.push(Math.round((ms - sentAt) / 1000));
    return `<date:${offsets.length}>`;
  };
  // Signatures: base64 of 32 bytes, raw or URI-encoded (either case of escape).
  text = text.replace(/\.(?:[A-Za-z0-9+/]|%2[bBfF]){43}(?:=|%3[dD])/g, (m) => `.${name("sig", m)}`);
  // JWTs (verification links).
  text = text.replace(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, (m) => name("jwt", m));
  // TOTP secrets in otpauth URIs (base32 without padding).
  text = text.replace(/secret=([A-Z2-7]+)/g, (_, s) => `secret=${name(`base32:${s.length}`, s)}`);
  // Backup codes.
  text = text.replace(/(?<![A-Za-z0-9_-])[A-Za-z0-9]{5}-[A-Za-z0-9]{5}(?![A-Za-z0-9_-])/g, (m) => name("backup", m));
  // ISO dates (JSON) and HTTP dates (cookie Expires).
  text = text.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, (m) => offset(Date.parse(m)));
  text = text.replace(/[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT/g, (m) => offset(Date.parse(m)));
  // Random tokens and ids: runs of 16+ characters of the token alphabets holding a digit and a letter.
  // (A run without a digit is still random unless it reads as a camelCase or UPPER_SNAKE word.)
  text = text.replace(/[A-Za-z0-9_-]{16,}/g, (m) =>
    /^[a-z]+(?:[A-Z][a-z]{2,})*$|^[A-Z]+(?:_[A-Z]+)*$/.test(m) ? m : name(`rand${m.length}`, m),
  );
  text = text.replace(/\u0000(\d+)\u0000/g, (_, i) => saved[Number(i)]);
  return { text, offsets };
}

/** One answer as the lines that are compared. */
export function render(res, effect, { lastCookieOnly = false } = {}) {
  const lines = [`status ${res.status}`];
  for (const h of HEADERS) {
    const v = res.headers[h];
    if (v === undefined) continue;
    if (h === "set-cookie") {
      // `lastCookieOnly`: of several lines for one cookie, the one a client keeps (RFC 6265
      // §5.3: a later cookie of the same name, domain and path replaces the earlier).
      const kept = lastCookieOnly ? v.filter((c, i) => !v.slice(i + 1).some((d) => d.split("=")[0] === c.split("=")[0])) : v;
      const sorted = [...kept].sort((a, b) => a.split("=")[0].localeCompare(b.split("=")[0]));
      for (const c of sorted) lines.push(`set-cookie: ${c}`);
    } else lines.push(`${h}: ${v}`);
  }
  lines.push(`body: ${res.body}`);
  if (effect) lines.push(`after: get-session ${effect.status} ${effect.body}`);
  return lines.join("\n");
}

export function sideBySide(a, b, width = 78) {
  const la = a.split("\n");
  const lb = b.split("\n");
  const wrap = (s) => {
    const out = [];
    for (let i = 0; i < s.length || i === 0; i += width) out.push(s.slice(i, i + width));
    return out;
  };
  const rows = [];
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    const x = la[i] ?? "";
    const y = lb[i] ?? "";
    const mark = x === y ? " " : "|";
    const wx = wrap(x);
    const wy = wrap(y);
    for (let k = 0; k < Math.max(wx.length, wy.length); k++) {
      rows.push(`${(wx[k] ?? "").padEnd(width)} ${mark} ${wy[k] ?? ""}`);
    }
  }
  return rows.join("\n");
}

export function globToRegExp(glob) {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
}

/** DIVERGENCES.md: every `### \`pattern\`` heading names the case ids a decision covers. */
/** Entries under a `## Not fixed yet` heading are differences still to fix, not decisions. */
export function readDivergences(file) {
  const out = [];
  let pending = false;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (line.startsWith("## ")) pending = /not fixed yet/i.test(line);
    const m = line.match(/^### `([^`]+)`/);
    if (m) out.push({ pattern: m[1], re: globToRegExp(m[1]), used: 0, pending });
  }
  return out;
}

export const here = path.dirname(new URL(import.meta.url).pathname);
