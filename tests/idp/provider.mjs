// A certified OpenID Provider (npm oidc-provider) for portcullis's tests: it issues
// client-credentials access tokens in the RFC 9068 JWT format (`typ: at+jwt`) for the
// resource `api://orders`, to a few clients with different scopes and app roles — and
// sender-constrained ones: DPoP-bound (RFC 9449, `cnf.jkt`) to `svc-dpop`, which must send
// a proof with its token request, and certificate-bound (RFC 8705, `cnf.x5t#S256`) to
// `svc-mtls`. One user-facing client, `web-app`, gets tokens for the user `alice` by the
// authorization code flow; they carry the sign-in's `acr` and `auth_time` (RFC 9068 §2.2.1)
// for step-up tests. Its sign-in page is automatic: the `acr` is the first of the request's
// `acr_values` the provider supports (else `urn:portcullis:pwd`), and the sign-in happened
// `login_age` seconds ago (an extra authorization parameter, default 0). The provider listens on plain HTTP, as it would behind a TLS-terminating
// proxy: the client certificate of the token request reaches it in the
// `x-client-certificate` header (URL-encoded PEM), as such a proxy forwards it.
//
//   node provider.mjs PORT ISSUER KEYS_DIR KID[,KID...]
//
// The signing keys are the test's: each KID's RSA key is read from KEYS_DIR/KID.json, or
// generated there the first time; the first KID signs, the others are only published
// (the way a provider rotates: publish and sign with a new key, keep the old one
// published, then drop it). Prints "ready" once it listens on 127.0.0.1:PORT.

import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import Provider from 'oidc-provider';

const [port, issuer, keysDir, kids] = process.argv.slice(2);
if (!port || !issuer || !keysDir || !kids) {
  console.error('usage: provider.mjs PORT ISSUER KEYS_DIR KID[,KID...]');
  process.exit(2);
}

function key(kid) {
  const file = join(keysDir, `${kid}.json`);
  if (!existsSync(file)) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
    writeFileSync(file, JSON.stringify(jwk));
  }
  return JSON.parse(readFileSync(file, 'utf8'));
}

// Scopes each client may ask for, and the app roles it gets as an extra claim.
const CLIENTS = {
  'svc-reader': { scope: 'Orders.Read', roles: [] },
  'svc-writer': { scope: 'Orders.Read Orders.Write', roles: [] },
  'svc-daemon': { scope: '', roles: ['Orders.Read.All'] },
  'svc-other': { scope: 'Orders.Read', roles: [] },
  'svc-dpop': { scope: 'Orders.Read', roles: [], metadata: { dpop_bound_access_tokens: true } },
  'svc-mtls': {
    scope: 'Orders.Read',
    roles: [],
    metadata: { tls_client_certificate_bound_access_tokens: true },
  },
};
const RESOURCE = 'api://orders';
const ACR_VALUES = ['urn:portcullis:pwd', 'urn:portcullis:mfa', 'urn:portcullis:phr'];
const WEB_APP = {
  client_id: 'web-app',
  client_secret: 'secret-web-app',
  grant_types: ['authorization_code'],
  redirect_uris: ['http://127.0.0.1/callback'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: 'openid Orders.Read',
};

const provider = new Provider(issuer, {
  clients: Object.entries(CLIENTS).map(([id, { scope, metadata }]) => ({
    client_id: id,
    client_secret: `secret-${id}`,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    ...(scope ? { scope } : {}),
    ...metadata,
  })).concat([WEB_APP]),
  acrValues: ACR_VALUES,
  extraParams: ['login_age'],
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['portcullis-test-idp-cookie-key'] },
  jwks: { keys: kids.split(',').map(key) },
  scopes: ['Orders.Read', 'Orders.Write'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    dPoP: { enabled: true },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      getCertificate: (ctx) => {
        const forwarded = ctx.get('x-client-certificate');
        return forwarded ? decodeURIComponent(forwarded) : undefined;
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'Orders.Read Orders.Write',
        audience: RESOURCE,
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => {
    const code = ctx.oidc.entities.AuthorizationCode;
    if (code) {
      return { acr: code.acr, auth_time: code.authTime };
    }
    const roles = CLIENTS[token.clientId]?.roles ?? [];
    return roles.length ? { roles } : undefined;
  },
});
provider.proxy = false;

// The automatic sign-in and consent of `alice` (see the top of the file).
provider.use(async (ctx, next) => {
  const uid = ctx.path.match(/^\/interaction\/([^/]+)$/)?.[1];
  if (!uid) {
    return next();
  }
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const requested = String(details.params.acr_values ?? '').split(' ');
  const acr = requested.find((value) => ACR_VALUES.includes(value)) ?? ACR_VALUES[0];
  const age = Number(details.params.login_age ?? 0);
  const grant = new provider.Grant({ accountId: 'alice', clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope));
  grant.addResourceScope(RESOURCE, 'Orders.Read');
  const grantId = await grant.save();
  const ts = Math.floor(Date.now() / 1000) - age;
  const returnTo = await provider.interactionResult(
    ctx.req,
    ctx.res,
    { login: { accountId: 'alice', acr, ts }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
  ctx.status = 303;
  ctx.redirect(returnTo);
});

const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log('ready');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
