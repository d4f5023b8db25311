// The frontend side of docs/better-auth.md, run in Node against the test server. TEST ONLY.
//
// Signs a user up with Better Auth's own client (createAuthClient + jwtClient), then
// takes a JWT the two documented ways: authClient.token() and the `set-auth-jwt`
// header of getSession. With HS256_SECRET set it also signs an HS256 token with jose,
// as the shared-secret alternative does. Prints one JSON line:
//   {"user": {...}, "token": "...", "sessionHeaderToken": "...", "hs256Token": "..."|null}
//
// Environment: BETTER_AUTH_URL (required), EMAIL, NAME, PASSWORD, HS256_SECRET.
import { createAuthClient } from "better-auth/client";
import { jwtClient } from "better-auth/client/plugins";
import { SignJWT } from "jose";

const baseURL = process.env.BETTER_AUTH_URL;
if (!baseURL) throw new Error("BETTER_AUTH_URL is required");

// A browser keeps the session cookie itself; in Node we carry it by hand.
let cookie = "";
const authClient = createAuthClient({
  baseURL,
  plugins: [jwtClient()],
  fetchOptions: {
    headers: { origin: baseURL },
    onRequest: (ctx) => {
      if (cookie) ctx.headers.set("cookie", cookie);
    },
    onResponse: (ctx) => {
      const setCookie = ctx.response.headers.get("set-cookie");
      if (setCookie) cookie = setCookie.split(";")[0];
    },
  },
});

const signUp = await authClient.signUp.email({
  email: process.env.EMAIL,
  password: process.env.PASSWORD,
  name: process.env.NAME,
});
if (signUp.error) throw new Error(`sign-up failed: ${JSON.stringify(signUp.error)}`);

const { data, error } = await authClient.token();
if (error) throw new Error(`token() failed: ${JSON.stringify(error)}`);

let sessionHeaderToken = null;
const session = await authClient.getSession({
  fetchOptions: {
    onSuccess: (ctx) => {
      sessionHeaderToken = ctx.response.headers.get("set-auth-jwt");
    },
  },
});
if (session.error) throw new Error(`getSession failed: ${JSON.stringify(session.error)}`);

let hs256Token = null;
if (process.env.HS256_SECRET) {
  const user = session.data.user;
  const secret = new TextEncoder().encode(process.env.HS256_SECRET);
  hs256Token = await new SignJWT({ email: user.email, name: user.name })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(user.id)
    .setIssuedAt()
    .setExpirationTime("15m")
    .setIssuer(baseURL)
    .setAudience(baseURL)
    .sign(secret);
}

console.log(JSON.stringify({ user: signUp.data.user, token: data.token, sessionHeaderToken, hs256Token }));
