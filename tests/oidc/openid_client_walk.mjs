// A relying party made with panva's openid-client (v6, OpenID-certified), for
// tests/oidc/test_interop_openid_client.py: it walks the provider the test serves and reports what
// it saw, one JSON object per line on its standard output.
//
//   node openid_client_walk.mjs '{"issuer", "client_id", "client_secret" (none: a public client),
//                                 "id_token_alg", "redirect_uri", "post_logout_redirect_uri", "scope"}'
//
// The user's part (the browser at the hosted pages) is the test's: for each authorization this
// prints {"authorize": <URL>} and reads the URL the browser was sent back to from its standard
// input, one line. Then it prints {"result": {...}} and exits (1, with the error on its standard
// error, if anything the library checks fails).
//
// The walk: discovery; authorization code + PKCE (S256) with state and nonce; the code grant,
// which checks the response's state and iss and the ID token (its signature against the JWKS too:
// enableNonRepudiationChecks; iss, aud, exp, nonce, at_hash by default); userinfo (its sub checked
// against the ID token's); refresh, twice, then the first refresh token again (a reuse); a second
// authorization, then RFC 7009 revocation; and the end_session URL.

import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'

// The package is installed in tests/node (npm ci --prefix tests/node), not next to this file, and
// ESM imports do not read NODE_PATH: resolve it from there (the package's `exports` still apply).
const require = createRequire(new URL('../node/package.json', import.meta.url))
const client = await import(pathToFileURL(require.resolve('openid-client')).href)

const args = JSON.parse(process.argv[2])
const say = (object) => process.stdout.write(`${JSON.stringify(object)}\n`)
const input = createInterface({ input: process.stdin })
const lines = input[Symbol.asyncIterator]()

async function authorize(config) {
  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: args.redirect_uri,
    scope: args.scope,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  })
  say({ authorize: url.href })
  const { value: callback, done } = await lines.next()
  if (done) throw new Error('no callback URL on standard input')
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  })
  return { tokens, nonce }
}

// What a call the server must refuse was refused with: the OAuth error of a token endpoint's
// answer, or the HTTP status of a Bearer challenge (userinfo).
async function refusal(call) {
  try {
    await call()
  } catch (error) {
    return { error: error.error ?? null, status: error.status ?? error.response?.status ?? null }
  }
  return { error: 'none: the call succeeded' }
}

const auth = args.client_secret ? client.ClientSecretPost(args.client_secret) : client.None()
const config = await client.discovery(
  new URL(args.issuer),
  args.client_id,
  { id_token_signed_response_alg: args.id_token_alg },
  auth,
  // The test's server speaks plain HTTP on the loopback: openid-client refuses http:// unless told
  // (allowInsecureRequests); a deployed provider is https:// only. enableNonRepudiationChecks
  // makes it verify the ID token's signature against the JWKS too, not only its claims.
  { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] },
)

const first = await authorize(config)
const claims = first.tokens.claims()
const userinfo = await client.fetchUserInfo(config, first.tokens.access_token, claims.sub)

// Rotation: each refresh gives a new refresh token. The first one, used again once its child is
// spent too, is a reuse: refused, and its family (the newest included) revoked.
const second = await client.refreshTokenGrant(config, first.tokens.refresh_token)
const third = await client.refreshTokenGrant(config, second.refresh_token)
const reused = await refusal(() => client.refreshTokenGrant(config, first.tokens.refresh_token))
const familyRevoked = await refusal(() => client.refreshTokenGrant(config, third.refresh_token))

// RFC 7009, on the tokens of a second authorization: the refresh token revoked refreshes nothing,
// and the access token revoked is refused by userinfo.
const again = await authorize(config)
const againClaims = again.tokens.claims()
await client.tokenRevocation(config, again.tokens.refresh_token, { token_type_hint: 'refresh_token' })
const revokedRefresh = await refusal(() => client.refreshTokenGrant(config, again.tokens.refresh_token))
await client.tokenRevocation(config, again.tokens.access_token, { token_type_hint: 'access_token' })
const revokedAccess = await refusal(() => client.fetchUserInfo(config, again.tokens.access_token, againClaims.sub))

const logoutState = client.randomState()
const endSession = client.buildEndSessionUrl(config, {
  id_token_hint: again.tokens.id_token,
  post_logout_redirect_uri: args.post_logout_redirect_uri,
  state: logoutState,
})

say({
  result: {
    id_token: first.tokens.id_token,
    id_token_claims: claims,
    nonce: first.nonce,
    access_token: first.tokens.access_token,
    userinfo,
    refresh_tokens: [first.tokens.refresh_token, second.refresh_token, third.refresh_token],
    refreshed_id_token_sub: second.claims()?.sub ?? null,
    reused,
    family_revoked: familyRevoked,
    second_sid: againClaims.sid,
    second_nonce_matches: againClaims.nonce === again.nonce,
    revoked_refresh: revokedRefresh,
    revoked_access: revokedAccess,
    end_session_url: endSession.href,
    logout_state: logoutState,
  },
})
input.close()
