// The Better Auth 1.7.25 side of the differential harness: stock better-auth on node:http,
// configured exactly like `scripts/conformance-server` configures Portcullis (email and
// password, email verification with auto sign-in, two-factor with mailed OTP), and nothing
// else, so that every difference the harness reports is one of behaviour, not of setup.
// A later plugin joins both servers here and in scripts/conformance-server.
//
// Runs from a directory whose node_modules holds the conformance kit's packages:
//   PORT=… DATABASE_PATH=… OUTBOX_FILE=… BETTER_AUTH_SECRET=… node reference.mjs
import http from "node:http";
import fs from "node:fs";
import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";
import { twoFactor, bearer } from "better-auth/plugins";

const env = process.env;
const PORT = Number.parseInt(env.PORT || "3100", 10);
const BASE_URL = `http://127.0.0.1:${PORT}`;
const OUTBOX_FILE = env.OUTBOX_FILE || "outbox.jsonl";
const outbox = (entry) =>
  fs.appendFileSync(OUTBOX_FILE, JSON.stringify({ ...entry, at: new Date().toISOString() }) + "\n");

const db = new Database(env.DATABASE_PATH || "reference.db");
db.pragma("journal_mode = WAL");
db.pragma("busy_timeout = 5000");

const auth = betterAuth({
  appName: "Better Auth Conformance",
  baseURL: BASE_URL,
  basePath: "/api/auth",
  secret: env.BETTER_AUTH_SECRET,
  database: db,
  trustedOrigins: [BASE_URL],
  emailAndPassword: {
    enabled: true,
    minPasswordLength: 8,
    maxPasswordLength: 128,
    sendResetPassword: async ({ user, url, token }) => outbox({ kind: "reset-password", to: user.email, url, token }),
  },
  emailVerification: {
    autoSignInAfterVerification: true,
    sendVerificationEmail: async ({ user, url, token }) => outbox({ kind: "verify-email", to: user.email, url, token }),
  },
  rateLimit: { enabled: false },
  advanced: { ipAddress: { ipAddressHeaders: ["x-forwarded-for"] } },
  telemetry: { enabled: false },
  plugins: [
    twoFactor({
      issuer: "BetterAuthConformance",
      otpOptions: { sendOTP: async ({ user, otp }) => outbox({ kind: "two-factor-otp", to: user.email, otp }) },
    }),
    bearer(),
  ],
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const handler = toNodeHandler(auth);
const server = http.createServer((req, res) => {
  if (req.url === "/api/auth" || req.url.startsWith("/api/auth/") || req.url.startsWith("/api/auth?")) {
    return handler(req, res);
  }
  res.writeHead(404, { "content-type": "application/json" });
  res.end(JSON.stringify({ message: "Not Found" }));
});
server.keepAliveTimeout = 65_000;
server.listen(PORT, "127.0.0.1", () => console.log(`[reference] listening on ${BASE_URL}/api/auth`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
