// Decrypts every twoFactor row of a Portcullis SQLite database with Better Auth's own
// symmetricDecrypt: proof that Better Auth reads the secrets and backup codes Portcullis writes.
// Run from a directory whose node_modules has better-auth and better-sqlite3 (the conformance
// kit's):  node check-two-factor-rows.mjs <database file> <secret file>
import fs from "node:fs";
import Database from "better-sqlite3";
import { symmetricDecrypt } from "better-auth/crypto";

const [file, secretFile] = process.argv.slice(2);
const key = fs.readFileSync(secretFile, "utf8").trim();
const rows = new Database(file, { readonly: true }).prepare("select secret, backupCodes from twoFactor").all();
if (rows.length === 0) throw new Error("no twoFactor rows to check");
for (const row of rows) {
  const secret = await symmetricDecrypt({ key, data: row.secret });
  if (!/^[A-Za-z0-9_-]{32}$/.test(secret)) throw new Error("a TOTP secret does not decrypt to Better Auth's form");
  const codes = JSON.parse(await symmetricDecrypt({ key, data: row.backupCodes }));
  if (!Array.isArray(codes) || !codes.every((c) => typeof c === "string")) throw new Error("backup codes are not a list");
}
console.log(`Better Auth decrypted all ${rows.length} twoFactor rows Portcullis wrote`);
