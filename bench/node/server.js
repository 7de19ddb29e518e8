// node-oidc-provider as the peer of the token-endpoint benchmark (bench/token_grants.py).
//
//   BENCH_CLIENT_SECRET=... node server.js --port 4000 --refresh-tokens 200000 --token-file rt.txt
//
// Every flag can also come from the environment: BENCH_PORT, BENCH_REFRESH_TOKENS,
// BENCH_TOKEN_FILE. One process, opaque tokens, the provider's own MemoryAdapter; a line
// "READY <issuer> minted=<n> mint_ms=<ms>" on stdout says the server accepts requests.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';
// The package has no "exports" map, so its own adapter and LRU are importable. The stock
// adapter keeps everything in an LRU of 1,000 entries (two generations, at most ~2,000),
// which would evict pre-minted refresh tokens long before they are used. Same adapter
// class, same LRU class, only a capacity that holds the whole run.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const CLIENT_ID = 'bench';
const RESOURCE = 'urn:bench:api';
const SCOPE = 'api';
const ACCOUNT_ID = 'bench-user';
// A JS Map holds at most 2^24 entries; the LRU keeps two generations of maxSize each.
const MAX_STORE = 8_000_000;

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.BENCH_PORT },
    'refresh-tokens': { type: 'string', default: process.env.BENCH_REFRESH_TOKENS ?? '0' },
    'token-file': { type: 'string', default: process.env.BENCH_TOKEN_FILE },
  },
});

const port = Number.parseInt(args.port ?? '', 10);
const refreshTokens = Number.parseInt(args['refresh-tokens'], 10);
const clientSecret = process.env.BENCH_CLIENT_SECRET;
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  throw new Error(`--port (or BENCH_PORT) must be a TCP port, got ${JSON.stringify(args.port)}`);
}
if (!Number.isInteger(refreshTokens) || refreshTokens < 0) {
  throw new Error(`--refresh-tokens must be a count >= 0, got ${JSON.stringify(args['refresh-tokens'])}`);
}
if (refreshTokens > 0 && !args['token-file']) {
  throw new Error('--token-file (or BENCH_TOKEN_FILE) is required when minting refresh tokens');
}
if (!clientSecret || clientSecret.length < 32) {
  throw new Error('BENCH_CLIENT_SECRET must be set (at least 32 characters)');
}

// Per pre-minted token: Grant, RefreshToken and the grant's member index; per refresh
// request two more (rotated RefreshToken, AccessToken). Headroom for the issued tokens.
const storeSize = Math.min(MAX_STORE, Math.max(100_000, 3 * refreshTokens + 2_000_000));
const store = new LRU({ maxSize: storeSize });

const issuer = `http://127.0.0.1:${port}`;
// Not used by these grants (no ID token); RS256 because it is the default client algorithm.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: 'bench-rs256' };

const provider = new Provider(issuer, {
  adapter: (name) => new MemoryAdapter(name, store),
  clients: [{
    client_id: CLIENT_ID,
    client_secret: clientSecret,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials', 'refresh_token', 'authorization_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/cb'],
    scope: `openid offline_access ${SCOPE}`,
  }],
  scopes: ['openid', 'offline_access', SCOPE],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  rotateRefreshToken: true,
  clientBasedCORS: () => false,
  renderError: (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) {
          throw new Provider.errors.InvalidTarget();
        }
        return { scope: SCOPE, accessTokenFormat: 'opaque', accessTokenTTL: 3600 };
      },
    },
  },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    ClientCredentials: 3600,
    IdToken: 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
  },
});
provider.proxy = false;

// As if each token came from its own authorization_code exchange: one Grant per token
// (a shared Grant would make the adapter's member index grow with every token).
async function mintRefreshTokens(count) {
  const client = await provider.Client.find(CLIENT_ID);
  const values = new Array(count);
  for (let i = 0; i < count; i += 1) {
    const grant = new provider.Grant({ accountId: ACCOUNT_ID, clientId: CLIENT_ID });
    grant.addResourceScope(RESOURCE, SCOPE);
    const grantId = await grant.save();
    const token = new provider.RefreshToken({
      accountId: ACCOUNT_ID,
      client,
      grantId,
      gty: 'authorization_code',
      resource: RESOURCE,
      scope: SCOPE,
      rotations: 0,
    });
    values[i] = await token.save();
  }
  return values;
}

// Bind first so that a taken port fails before minting, not after.
const server = provider.listen(port, '127.0.0.1');
await once(server, 'listening');

const started = process.hrtime.bigint();
const minted = await mintRefreshTokens(refreshTokens);
if (refreshTokens > 0) {
  writeFileSync(args['token-file'], `${minted.join('\n')}\n`);
}
const mintMs = Number((process.hrtime.bigint() - started) / 1_000_000n);
process.stdout.write(`READY ${issuer} minted=${refreshTokens} mint_ms=${mintMs}\n`);

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
