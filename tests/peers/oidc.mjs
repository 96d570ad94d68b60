// An OpenID Connect provider from its registry package (oidc-provider,
// OpenID-certified), unmodified, configured as an MCP deployment would: open
// dynamic client registration, PKCE, resource indicators (RFC 8707) with
// opaque access tokens checked by introspection, refresh tokens rotated on
// every use with reuse detection (a reused one revokes the whole grant),
// revocation (RFC 7009), its own login and consent forms, and the client
// credentials grant for a service client (mcp-service).
//
// node oidc.mjs PORT ACCESS_TOKEN_TTL_SECONDS [opaque|jwt-dpop-nonce]
//   jwt-dpop-nonce: access tokens are JWTs (RFC 9068) a resource server
//   checks with the provider's keys, and every DPoP proof at the token
//   endpoint must carry a nonce of the provider's (RFC 9449 §8).
// Prints its issuer when it listens. Test hooks under /_test (never in a
// real deployment): GET stats (what the provider did, from its own events),
// POST revoke-access (every access token, not the refresh tokens), POST
// revoke-all (an administrator revokes every grant), POST ttl?seconds=N (the
// lifetime of access tokens issued from now on).
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || 0);
let accessTokenTtl = Number(process.argv[3] || 300);
const jwtWithNonces = process.argv[4] === 'jwt-dpop-nonce';
const introspectionSecret = process.env.INTROSPECTION_SECRET || 'resource-server-introspection-secret';
const serviceSecret = process.env.SERVICE_SECRET || 'mcp-service-client-secret';

const stats = {
  requests: {},           // "METHOD path" -> count
  grants: { authorization_code: 0, refresh_token: 0, client_credentials: 0 },  // successful token responses by grant_type
  grant_errors: { invalid_grant: 0 },                  // failed ones by error
  grant_error_descriptions: [],
  revoked_grants: 0,      // grants revoked for reuse of a refresh token, or by an administrator
  revocations: 0,         // grants revoked by their client (RFC 7009, a refresh token)
  registrations: 0,
  resources: [],          // the resource of every token request, in order
  token_types: {},        // token_type of every successful token response (Bearer, DPoP)
};
const grants = new Set();
const accessTokens = new Set();

function bump(map, key) { map[key] = (map[key] || 0) + 1; }

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'resource-server',
      client_secret: introspectionSecret,
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    }, {
      client_id: 'mcp-service',
      client_secret: serviceSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    }],
    scopes: ['openid', 'offline_access', 'mcp:tools', 'mcp:admin'],
    features: {
      devInteractions: { enabled: true },
      registration: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      dPoP: jwtWithNonces
        ? { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true }
        : { enabled: true },
      resourceIndicators: {
        enabled: true,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => ({
          scope: 'mcp:tools mcp:admin',
          audience: resource,
          accessTokenTTL: accessTokenTtl,
          accessTokenFormat: jwtWithNonces ? 'jwt' : 'opaque',
        }),
      },
    },
    // Every client that may refresh gets a refresh token, rotated on every
    // use: the setting that makes a lost rotation visible.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    ttl: { RefreshToken: 24 * 3600, Grant: 24 * 3600, Session: 24 * 3600, Interaction: 600, AuthorizationCode: 60 },
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    // Plain HTTP on loopback: the provider refuses cookies marked secure.
    cookies: { keys: ['peer-test-cookie-key'] },
  });
  provider.proxy = true;

  provider.on('grant.success', (ctx) => {
    bump(stats.grants, ctx.oidc.params.grant_type);
    bump(stats.token_types, ctx.body?.token_type);
    stats.resources.push(ctx.oidc.params.resource ?? null);
    const grantId = ctx.oidc.entities.Grant?.jti;
    if (grantId) grants.add(grantId);
  });
  provider.on('access_token.saved', (token) => accessTokens.add(['AccessToken', token.jti]));
  provider.on('client_credentials.saved', (token) => accessTokens.add(['ClientCredentials', token.jti]));
  provider.on('grant.error', (ctx, error) => {
    bump(stats.grant_errors, error.error || 'unknown');
    stats.grant_error_descriptions.push(`${ctx.oidc.params?.grant_type}: ${error.error_description}`);
  });
  // A grant is revoked when a rotated refresh token is reused, and when its
  // client revokes its refresh token (RFC 7009): told apart by the route.
  provider.on('grant.revoked', (ctx) => {
    if (ctx.oidc.route === 'revocation') stats.revocations += 1;
    else stats.revoked_grants += 1;
  });
  provider.on('registration_create.success', () => { stats.registrations += 1; });

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const path = req.url.split('?')[0];
    if (path.startsWith('/_test/')) {
      const reply = (body) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(body)); };
      if (path === '/_test/stats') return reply(stats);
      if (path === '/_test/ttl') {
        accessTokenTtl = Number(new URL(req.url, issuer).searchParams.get('seconds'));
        return reply({ ttl: accessTokenTtl });
      }
      if (path === '/_test/revoke-access') {
        // Access tokens only: the refresh tokens stay good.
        let revoked = 0;
        for (const [model, jti] of accessTokens) {
          const token = await provider[model].find(jti);
          if (token) {
            await token.destroy();
            revoked += 1;
          }
        }
        accessTokens.clear();
        return reply({ revoked });
      }
      if (path === '/_test/revoke-all') {
        for (const grantId of grants) {
          await Promise.all([
            provider.AccessToken.revokeByGrantId(grantId),
            provider.RefreshToken.revokeByGrantId(grantId),
            provider.Grant.adapter.destroy(grantId),
          ]);
          stats.revoked_grants += 1;
        }
        const count = grants.size;
        grants.clear();
        return reply({ revoked: count });
      }
      res.statusCode = 404;
      return res.end();
    }
    bump(stats.requests, `${req.method} ${path.replace(/\/[A-Za-z0-9_-]{20,}/g, '/:id')}`);
    return callback(req, res);
  });
  console.log(issuer);
});
