// An MCP server built on the official TypeScript SDK (@modelcontextprotocol/sdk
// 1.x from npm, unmodified), as most published servers are: Streamable HTTP
// through express, stateful (a transport per session, kept in a map, as the
// SDK's README shows) or stateless (a transport per request), protected by
// the SDK's own bearer middleware and protected-resource metadata router,
// with tokens checked by introspection at the authorization server; or,
// for DPoP, behind Auth0's express-oauth2-jwt-bearer (npm, unmodified), which
// checks JWT access tokens with the provider's keys and a DPoP proof (RFC
// 9449 §4.3, §7) on every request.
//
// node ts-server.mjs PORT ISSUER MODE SESSION_MISS [AUTH]
//   MODE: stateful | stateless
//   SESSION_MISS: what a stateful server answers to an unknown session id:
//     404 (JSON-RPC -32001 "Session not found", the SDK's transport and
//     its current documentation) or 400 (-32000 "Bad Request: No valid
//     session ID provided", the 1.x README's example).
//   AUTH: introspection (default: the SDK's bearer middleware) or dpop
//     (express-oauth2-jwt-bearer with DPoP required; no step-up).
// Prints its MCP URL when it listens. GET /_test/stats: what it saw.
import express from 'express';
import { randomUUID, createHash } from 'node:crypto';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { mcpAuthMetadataRouter, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { auth as jwtAuth, requiredScopes } from 'express-oauth2-jwt-bearer';
import { ListToolsRequestSchema, CallToolRequestSchema, isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

const [port, issuer, mode = 'stateful', sessionMiss = '404', authMode = 'introspection'] = process.argv.slice(2);
const introspectionSecret = process.env.INTROSPECTION_SECRET || 'resource-server-introspection-secret';
const PAGE_SIZE = 2;

const stats = {
  initializes: 0,
  sessions_created: 0,
  unknown_session_requests: 0,
  // Requests that carried a session with another token than the one it was
  // made with: must stay 0.
  session_credential_mismatches: 0,
  calls: {},
  list_pages: 0,
  requests_without_session: 0,
  schemes: {},            // the Authorization scheme of every /mcp request
  last_token: null,       // AUTH dpop only: the access token last accepted, for replays
};

const oauthMetadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();

function fingerprint(token) { return createHash('sha256').update(token).digest('hex').slice(0, 16); }

// Token verification by introspection (RFC 7662) at the authorization server.
const verifier = {
  async verifyAccessToken(token) {
    const response = await fetch(oauthMetadata.introspection_endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: 'Basic ' + Buffer.from(`resource-server:${introspectionSecret}`).toString('base64'),
      },
      body: new URLSearchParams({ token }),
    });
    const info = await response.json();
    if (!info.active) throw new InvalidTokenError('Token is not active');
    return {
      token,
      clientId: info.client_id,
      scopes: (info.scope || '').split(' ').filter(Boolean),
      expiresAt: info.exp,
      resource: info.aud ? new URL(Array.isArray(info.aud) ? info.aud[0] : info.aud) : undefined,
      extra: { sub: info.sub },
    };
  },
};

const tools = [
  { name: 'echo', description: 'Echoes its text', inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } },
  { name: 'add', description: 'Adds two numbers', inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] } },
  { name: 'whoami', description: 'Who the token belongs to', inputSchema: { type: 'object', properties: {} } },
  { name: 'admin_action', description: 'Needs the mcp:admin scope', inputSchema: { type: 'object', properties: {} } },
  { name: 'slow', description: 'Answers after ms milliseconds', inputSchema: { type: 'object', properties: { ms: { type: 'number' } } } },
];

function newServer() {
  const server = new Server({ name: 'ts-sdk-peer', version: '1.0.0' }, { capabilities: { tools: {} } });
  // Every page of the list, PAGE_SIZE at a time, with an opaque cursor.
  server.setRequestHandler(ListToolsRequestSchema, async (request) => {
    stats.list_pages += 1;
    const start = request.params?.cursor ? Number(Buffer.from(request.params.cursor, 'base64url').toString()) : 0;
    const page = tools.slice(start, start + PAGE_SIZE);
    const next = start + PAGE_SIZE < tools.length ? Buffer.from(String(start + PAGE_SIZE)).toString('base64url') : undefined;
    return next ? { tools: page, nextCursor: next } : { tools: page };
  });
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const { name, arguments: args = {} } = request.params;
    stats.calls[name] = (stats.calls[name] || 0) + 1;
    switch (name) {
      case 'echo': return { content: [{ type: 'text', text: String(args.text) }] };
      case 'add': return { content: [{ type: 'text', text: String(args.a + args.b) }], structuredContent: { sum: args.a + args.b } };
      case 'whoami': {
        // The SDK's AuthInfo, or express-oauth2-jwt-bearer's verified JWT.
        const info = extra.authInfo;
        return { content: [{ type: 'text', text: `${info?.extra?.sub ?? info?.payload?.sub} via ${info?.clientId ?? info?.payload?.client_id}` }] };
      }
      case 'admin_action': return { content: [{ type: 'text', text: 'admin done' }] };
      case 'slow':
        await new Promise((resolve) => setTimeout(resolve, Number(args.ms || 1000)));
        return { content: [{ type: 'text', text: 'slow done' }] };
      default: return { content: [{ type: 'text', text: `unknown tool ${name}` }], isError: true };
    }
  });
  return server;
}

const app = express();
app.use(express.json());
const mcpUrl = new URL(`http://127.0.0.1:${port}/mcp`);
const resourceMetadataUrl = getOAuthProtectedResourceMetadataUrl(mcpUrl);
app.use(mcpAuthMetadataRouter({ oauthMetadata, resourceServerUrl: mcpUrl, scopesSupported: ['mcp:tools'], resourceName: 'TS SDK peer' }));

// Per-tool scope: admin_action needs mcp:admin as well (the SDK's own
// middleware answers 403 insufficient_scope with the scope to ask for).
const baseAuth = requireBearerAuth({ verifier, requiredScopes: ['mcp:tools'], resourceMetadataUrl, expectedResource: mcpUrl });
const adminAuth = requireBearerAuth({ verifier, requiredScopes: ['mcp:tools', 'mcp:admin'], resourceMetadataUrl, expectedResource: mcpUrl });
// AUTH dpop: its challenge names no resource_metadata, so a client finds
// the metadata at its well-known URI (RFC 9728 §3).
const dpopAuth = jwtAuth({ issuerBaseURL: issuer, audience: mcpUrl.href, dpop: { enabled: true, required: true } });
const dpopScope = requiredScopes('mcp:tools');
function auth(req, res, next) {
  const scheme = (req.headers.authorization || 'none').split(' ')[0];
  stats.schemes[scheme] = (stats.schemes[scheme] || 0) + 1;
  if (authMode === 'dpop') {
    return dpopAuth(req, res, (error) => {
      if (error) return next(error);
      stats.last_token = req.auth.token;
      return dpopScope(req, res, next);
    });
  }
  const admin = req.method === 'POST' && req.body?.method === 'tools/call' && req.body?.params?.name === 'admin_action';
  return (admin ? adminAuth : baseAuth)(req, res, next);
}

const transports = {}; // session id -> { transport, token fingerprint }

function sessionMissed(res) {
  stats.unknown_session_requests += 1;
  if (sessionMiss === '400') {
    return res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: No valid session ID provided' }, id: null });
  }
  return res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
}

async function handleStateful(req, res) {
  const sessionId = req.headers['mcp-session-id'];
  const token = fingerprint(req.auth.token);
  if (sessionId && transports[sessionId]) {
    if (transports[sessionId].token !== token) stats.session_credential_mismatches += 1;
    return transports[sessionId].transport.handleRequest(req, res, req.body);
  }
  if (sessionId) return sessionMissed(res);
  if (req.method === 'POST' && isInitializeRequest(req.body)) {
    stats.initializes += 1;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        stats.sessions_created += 1;
        transports[id] = { transport, token };
      },
    });
    transport.onclose = () => { if (transport.sessionId) delete transports[transport.sessionId]; };
    await newServer().connect(transport);
    return transport.handleRequest(req, res, req.body);
  }
  stats.requests_without_session += 1;
  return res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: No valid session ID provided' }, id: null });
}

async function handleStateless(req, res) {
  if (req.method !== 'POST') return res.status(405).set('Allow', 'POST').end();
  if (isInitializeRequest(req.body)) stats.initializes += 1;
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  const server = newServer();
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  return transport.handleRequest(req, res, req.body);
}

app.all('/mcp', auth, (req, res) => (mode === 'stateless' ? handleStateless : handleStateful)(req, res).catch((error) => {
  console.error(error);
  if (!res.headersSent) res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null });
}));
app.get('/_test/stats', (req, res) => res.json({ ...stats, open_sessions: Object.keys(transports).length }));

app.listen(Number(port), '127.0.0.1', () => console.log(mcpUrl.href));
