// Minimal Better Auth server used by the e2e interop tests. TEST ONLY.
//
// Email+password sign-up/sign-in, the jwt() plugin (GET /api/auth/token,
// GET /api/auth/jwks), in-memory storage (every restart starts empty),
// listening on 127.0.0.1 only.
//
// Environment:
//   PORT                  port to listen on (required; 0 = pick a free one)
//   BETTER_AUTH_URL       base URL, e.g. http://127.0.0.1:PORT (default: that)
//                         -> JWT iss and aud, and the trusted origin
//   BETTER_AUTH_SECRET    secret that encrypts the private keys (test-only)
//   JWT_ALG               EdDSA (default) | ES256 | ES512 | RS256 | PS256
//   JWT_EXPIRATION        token lifetime, e.g. "15m" (default) or "30s"
//   JWKS_ROTATION_INTERVAL  seconds a signing key lives (default: no rotation)
//   JWKS_GRACE_PERIOD     seconds an expired key stays in the JWKS
//                         (Better Auth default: 2592000 = 30 days)
//
// Prints one line `BETTER_AUTH_READY <base url>` on stdout once listening.
import http from "node:http";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { getAuthTables } from "better-auth/db";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins";

const HOST = "127.0.0.1";
const ALGS = ["EdDSA", "ES256", "ES512", "RS256", "PS256"];

function intEnv(name) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const port = intEnv("PORT");
if (port === undefined) throw new Error("PORT is required");
const alg = process.env.JWT_ALG || "EdDSA";
if (!ALGS.includes(alg)) throw new Error(`JWT_ALG must be one of ${ALGS.join(", ")}, got ${alg}`);
const secret = process.env.BETTER_AUTH_SECRET;
if (!secret || secret.length < 32) throw new Error("BETTER_AUTH_SECRET must be set (>= 32 chars)");
const rotationInterval = intEnv("JWKS_ROTATION_INTERVAL");
const gracePeriod = intEnv("JWKS_GRACE_PERIOD");

const server = http.createServer();

function start(listenPort) {
  const baseURL = (process.env.BETTER_AUTH_URL || `http://${HOST}:${listenPort}`).replace(/\/+$/, "");
  const keyPairConfig = alg === "EdDSA" ? { alg, crv: "Ed25519" } : { alg };
  const plugins = [
    jwt({
      jwks: {
        keyPairConfig,
        ...(rotationInterval ? { rotationInterval } : {}),
        ...(gracePeriod !== undefined ? { gracePeriod } : {}),
      },
      jwt: {
        ...(process.env.JWT_EXPIRATION ? { expirationTime: process.env.JWT_EXPIRATION } : {}),
      },
    }),
  ];
  // The memory adapter needs one array per table up front.
  const db = {};
  for (const table of Object.values(getAuthTables({ plugins }))) db[table.modelName] = [];

  const auth = betterAuth({
    baseURL,
    secret,
    database: memoryAdapter(db),
    emailAndPassword: { enabled: true },
    trustedOrigins: [baseURL],
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
    plugins,
  });

  const handler = toNodeHandler(auth);
  server.on("request", (req, res) => {
    if (req.url === "/health") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
      return;
    }
    handler(req, res);
  });
  return baseURL;
}

server.listen(port, HOST, () => {
  const actual = server.address().port;
  const baseURL = start(actual);
  console.log(`BETTER_AUTH_READY ${baseURL} alg=${alg}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
