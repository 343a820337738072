// A real OpenID Connect / OAuth 2.1 authorization server for the test suite, built on
// `oidc-provider` (a certified implementation). Test-only: it prints its signing key.
//
//   node tests/oidc/server.mjs
//
// Listens on 127.0.0.1 on a free port; the issuer is http://127.0.0.1:<port>. When ready it
// prints one JSON line to stdout (issuer, endpoints, the signing key's kid and PKCS#8 PEM,
// a key that is never published, the static clients). It exits when stdin closes (so a
// test process that dies leaves nothing behind) and on SIGTERM or SIGINT.
//
// Access tokens: with `resource=<any http(s) URL>` at the token endpoint, a JWT (RS256,
// typ at+jwt) whose `aud` is that URL and whose `scope` is what was asked for and allowed.
// Lifetime: OIDC_ACCESS_TOKEN_TTL seconds (default 600), or per request with the header
// `x-test-access-token-ttl: <seconds>` on the token request.
// Resource scopes: OIDC_RESOURCE_SCOPES (space-separated; default
// "atomicwork.read atomicwork.write").
//
// Test-only control endpoints (nothing of oidc-provider's lives under /__test/):
//   POST /__test/rotate          new RSA signing key; earlier keys stay in the JWKS
//   POST /__test/drop-old-keys   only the current signing key stays in the JWKS
//   GET  /__test/stats           {"jwks_fetches": n}: GET requests to the JWKS path so far

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const JWKS_PATH = '/jwks';
const CONTROL_PREFIX = '/__test/';
const TTL_HEADER = 'x-test-access-token-ttl';

function positiveInt(value, name) {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`${name} must be a positive integer of seconds, got ${JSON.stringify(value)}`);
  }
  return n;
}

const defaultTtl = positiveInt(process.env.OIDC_ACCESS_TOKEN_TTL ?? '600', 'OIDC_ACCESS_TOKEN_TTL');
const resourceScopes = (process.env.OIDC_RESOURCE_SCOPES ?? 'atomicwork.read atomicwork.write')
  .split(/\s+/)
  .filter(Boolean);

/** A fresh RSA key: its private JWK (for the provider), PKCS#8 PEM and SPKI PEM. */
function newKey() {
  // The pair comes out as PEM text and the JWK is exported from a key object of its own:
  // exporting from the generator's key objects can deadlock when a garbage collection
  // frees the generator mid-export (seen on Node.js 20).
  const { privateKey: pem, publicKey: publicPem } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const kid = crypto.randomBytes(12).toString('base64url');
  const jwk = crypto.createPrivateKey(pem).export({ format: 'jwk' });
  return {
    kid,
    jwk: { ...jwk, kid, alg: 'RS256', use: 'sig' },
    pem,
    publicPem,
  };
}

function secret() {
  return crypto.randomBytes(24).toString('base64url');
}

// Signing keys, newest (the one that signs) first. Every key here is in the JWKS.
let keys = [newKey()];
// Never published: signs tokens whose kid the issuer does not know.
const stranger = newKey();
const cookieKeys = [secret()];

const clients = {
  // client_credentials, may ask for every resource scope.
  confidential: {
    client_id: 'mcp-service',
    client_secret: secret(),
    scope: resourceScopes.join(' '),
  },
  // client_credentials, may ask only for the first resource scope.
  read_only: {
    client_id: 'mcp-service-read',
    client_secret: secret(),
    scope: resourceScopes.slice(0, 1).join(' '),
  },
  // Authorization code + PKCE, no secret, loopback redirect.
  public: {
    client_id: 'mcp-desktop',
    redirect_uri: 'http://127.0.0.1/callback',
    scope: ['openid', 'offline_access', ...resourceScopes].join(' '),
  },
};

function requestedTtl(ctx) {
  const header = ctx.get(TTL_HEADER);
  if (!header) return defaultTtl;
  const n = Number(header);
  if (!Number.isInteger(n) || n <= 0) {
    throw new errors.InvalidRequest(`${TTL_HEADER} must be a positive integer`);
  }
  return n;
}

function isHttpUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

function buildProvider(issuer) {
  const signingKid = keys[0].kid;
  return new Provider(issuer, {
    jwks: { keys: keys.map((k) => k.jwk) },
    cookies: { keys: cookieKeys },
    routes: { jwks: JWKS_PATH },
    scopes: ['openid', 'offline_access', ...resourceScopes],
    // OAuth 2.1: the authorization code flow only.
    responseTypes: ['code'],
    clients: [
      {
        client_id: clients.confidential.client_id,
        client_secret: clients.confidential.client_secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: clients.confidential.scope,
      },
      {
        client_id: clients.read_only.client_id,
        client_secret: clients.read_only.client_secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: clients.read_only.scope,
      },
      {
        client_id: clients.public.client_id,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [clients.public.redirect_uri],
        scope: clients.public.scope,
      },
    ],
    pkce: { required: () => true },
    // Users of the login page: any login is an account; its email claim goes into the
    // access token so a resource server can record who called.
    async findAccount(ctx, sub) {
      return { accountId: sub, async claims() { return { sub, email: emailOf(sub) }; } };
    },
    async extraTokenClaims(ctx, token) {
      return token.accountId ? { email: emailOf(token.accountId) } : undefined;
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      registration: { enabled: true },
      rpInitiatedLogout: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // The one resource asked for at the authorization endpoint is used at the token
        // endpoint even when the token request does not repeat it.
        async useGrantedResource() {
          return true;
        },
        async defaultResource(ctx, client, oneOf) {
          return oneOf;
        },
        async getResourceServerInfo(ctx, resourceIndicator) {
          if (!isHttpUrl(resourceIndicator)) {
            throw new errors.InvalidTarget('resource must be an http(s) URL');
          }
          return {
            scope: resourceScopes.join(' '),
            audience: resourceIndicator,
            accessTokenFormat: 'jwt',
            accessTokenTTL: requestedTtl(ctx),
            jwt: { sign: { alg: 'RS256', kid: signingKid } },
          };
        },
      },
    },
  });
}

function emailOf(accountId) {
  return accountId.includes('@') ? accountId : `${accountId}@example.test`;
}

function keyReport() {
  return {
    kid: keys[0].kid,
    signing_key_pem: keys[0].pem,
    public_key_pem: keys[0].publicPem,
    kids: keys.map((k) => k.kid),
  };
}

let provider;
let handler;
let jwksFetches = 0;

function install(issuer) {
  provider = buildProvider(issuer);
  handler = provider.callback();
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

function control(req, res, path, issuer) {
  if (req.method === 'POST' && path === `${CONTROL_PREFIX}rotate`) {
    keys = [newKey(), ...keys];
    install(issuer);
    sendJson(res, 200, keyReport());
  } else if (req.method === 'POST' && path === `${CONTROL_PREFIX}drop-old-keys`) {
    keys = keys.slice(0, 1);
    install(issuer);
    sendJson(res, 200, keyReport());
  } else if (req.method === 'GET' && path === `${CONTROL_PREFIX}stats`) {
    sendJson(res, 200, { jwks_fetches: jwksFetches });
  } else {
    sendJson(res, 404, { error: 'not_found' });
  }
}

const server = http.createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
  if (path.startsWith(CONTROL_PREFIX)) {
    req.resume();
    req.on('end', () => control(req, res, path, provider.issuer));
    return;
  }
  if (path === JWKS_PATH && req.method === 'GET') {
    jwksFetches += 1;
  }
  // RFC 8414 clients look here first; the OpenID discovery document is a superset of
  // that metadata for an issuer without a path.
  if (path === '/.well-known/oauth-authorization-server') {
    req.url = '/.well-known/openid-configuration';
  }
  handler(req, res);
});

function shutdown(code) {
  server.close();
  process.exit(code);
}

process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.stdin.on('end', () => shutdown(0));
process.stdin.on('close', () => shutdown(0));
process.stdin.on('error', () => shutdown(0));
process.stdin.resume();

server.on('error', (err) => {
  console.error(`oidc test server: ${err.stack ?? err}`);
  process.exit(1);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  try {
    install(issuer);
  } catch (err) {
    console.error(`oidc test server: ${err.stack ?? err}`);
    process.exit(1);
  }
  const ready = {
    issuer,
    port,
    discovery_url: `${issuer}/.well-known/openid-configuration`,
    jwks_uri: `${issuer}${JWKS_PATH}`,
    ...keyReport(),
    stranger_kid: stranger.kid,
    stranger_key_pem: stranger.pem,
    stranger_public_key_pem: stranger.publicPem,
    resource_scopes: resourceScopes,
    access_token_ttl: defaultTtl,
    ttl_header: TTL_HEADER,
    clients,
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
});
