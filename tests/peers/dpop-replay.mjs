// Replays an access token a DPoP resource server accepted, as a thief
// holding the token but not the key would: as Bearer, as DPoP without a
// proof, and with a well-formed proof signed by a key of its own (RFC 9449
// §4.2, node's crypto). Prints each status with the server's error and
// error_description.
//
// node dpop-replay.mjs MCP_URL ACCESS_TOKEN
import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto';

const [url, token] = process.argv.slice(2);
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

function foreignProof() {
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } };
  const claims = {
    htm: 'POST',
    htu: url,
    iat: Math.floor(Date.now() / 1000),
    jti: randomUUID(),
    ath: createHash('sha256').update(token).digest('base64url'),
  };
  const input = `${b64(header)}.${b64(claims)}`;
  const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

const body = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'replay', version: '1' } },
});
async function replay(name, headers) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body,
  });
  const challenge = response.headers.get('www-authenticate') || '';
  const param = (key) => new RegExp(`${key}="([^"]*)"`).exec(challenge)?.[1] ?? '';
  console.log(`${name}=${response.status} ${param('error')}: ${param('error_description')}`);
}

await replay('bearer', { authorization: `Bearer ${token}` });
await replay('no-proof', { authorization: `DPoP ${token}` });
await replay('foreign-proof', { authorization: `DPoP ${token}`, dpop: foreignProof() });
