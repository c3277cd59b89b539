// The test's frontend (tests/passkeys/test_browser.py): a single-page app on an origin of its own
// that calls the server's passkey API cross-origin (fetch, CORS), as a real one would. The test
// calls window.spa's functions with Selenium's execute_async_script; each answers a plain object:
// `step` (where it stopped: options, create, get, finish), the last answer's `status` and `body`,
// and the `credential` (PublicKeyCredential.toJSON()) and `options` the test may replay.
"use strict";

// WebAuthn's JSON helpers (Chromium 129+): without them the test would have to convert base64url
// itself, which it does not do. Missing ones fail the test loudly.
function requireJSONHelpers() {
  const missing = ["parseCreationOptionsFromJSON", "parseRequestOptionsFromJSON"].filter(
    (name) => typeof PublicKeyCredential[name] !== "function",
  );
  if (typeof PublicKeyCredential.prototype.toJSON !== "function") missing.push("prototype.toJSON");
  if (missing.length) throw new Error(`this browser lacks PublicKeyCredential.${missing.join(", PublicKeyCredential.")}`);
}

async function call(base, method, path, body, token) {
  const headers = {};
  if (body !== undefined && body !== null) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(base + path, {
    method,
    headers,
    body: body === undefined || body === null ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // not JSON: answered as text
  }
  return { status: response.status, body: parsed };
}

async function ceremony(run) {
  try {
    const credential = await run();
    return { credential: credential.toJSON() };
  } catch (error) {
    return { error: `${error.name}: ${error.message}` };
  }
}

// A registration: the options from `base`, the ceremony, the credential posted (unless `post` is
// false) to `finishBase` (another node of the server) or `base`.
async function register(base, token, password, name, post = true, finishBase = null) {
  requireJSONHelpers();
  const started = await call(base, "POST", "/api/passkeys/options", { password }, token);
  if (started.status !== 200) return { step: "options", ...started };
  const options = started.body.options;
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
  const made = await ceremony(() => navigator.credentials.create({ publicKey }));
  if (made.error) return { step: "create", error: made.error, options };
  if (!post) return { step: "create", credential: made.credential, options };
  const body = { credential: made.credential };
  if (name !== null && name !== undefined) body.name = name;
  const finished = await call(finishBase || base, "POST", "/api/passkeys", body, token);
  return { step: "finish", ...finished, credential: made.credential, options };
}

// The browser's part of a sign-in, for options and a ceremony the server gave: the assertion,
// posted to `base` unless `post` is false.
async function assertFor(base, options, ceremonyToken, post = true) {
  requireJSONHelpers();
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
  const made = await ceremony(() => navigator.credentials.get({ publicKey }));
  if (made.error) return { step: "get", error: made.error, options, ceremony: ceremonyToken };
  if (!post) return { step: "get", credential: made.credential, options, ceremony: ceremonyToken };
  const finished = await call(base, "POST", "/api/authenticate/passkey", {
    ceremony: ceremonyToken,
    credential: made.credential,
  });
  return { step: "finish", ...finished, credential: made.credential, options, ceremony: ceremonyToken };
}

// A whole sign-in: the options from `base`, the ceremony, the finish posted to `finishBase`
// (another node of the server) or `base`.
async function signIn(base, email, finishBase, post = true) {
  requireJSONHelpers();
  const started = await call(base, "POST", "/api/authenticate/passkey/options", email ? { email } : {});
  if (started.status !== 200) return { step: "options", ...started };
  return assertFor(finishBase || base, started.body.options, started.body.ceremony, post);
}

window.spa = { call, register, signIn, assertFor };
