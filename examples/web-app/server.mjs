// The example application's backend: every route is one SQL statement of
// mcp_oauth; nothing about OAuth or MCP lives here. The database user is
// the signed-in application user (here a role, PGUSER; with
// mcp_oauth.identity = 'setting:app.user_id' it would SET LOCAL it).
//
//   PGHOST=... PGUSER=alice PORT=3000 APP_ORIGIN=http://127.0.0.1:3000 node server.mjs
import http from "node:http";
import { readFile } from "node:fs/promises";
import pg from "pg";

const port = Number(process.env.PORT ?? 3000);
const origin = process.env.APP_ORIGIN ?? `http://127.0.0.1:${port}`;
const pool = new pg.Pool({ max: 4 });
const here = new URL(".", import.meta.url);

const sql = async (text, params = []) => (await pool.query(text, params)).rows;

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : {};
}

function send(res, status, type, payload) {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(payload);
}
const json = (res, status, value) => send(res, status, "application/json", JSON.stringify(value));

const routes = [
  ["GET", /^\/$/, async (req, res) => send(res, 200, "text/html; charset=utf-8", await readFile(new URL("public/index.html", here)))],
  ["GET", /^\/app\.js$/, async (req, res) => send(res, 200, "text/javascript", await readFile(new URL("public/app.js", here)))],
  ["GET", /^\/api\/servers$/, async (req, res) =>
    json(res, 200, await sql("SELECT id, name, slug, auth_type, oauth_authorized, reauth_required FROM mcp_servers ORDER BY slug"))],
  ["POST", /^\/api\/servers$/, async (req, res) => {
    const { name, url } = await body(req);
    const [row] = await sql("INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ($1, $2, 'oauth') RETURNING id", [name, url]);
    json(res, 201, row);
  }],
  ["POST", /^\/api\/servers\/([0-9a-f-]{36})\/sign-in$/, async (req, res, [id]) => {
    const [row] = await sql("SELECT mcp_oauth_start($1) AS url", [id]);
    json(res, 200, row);
  }],
  // The popup lands here (mcp_oauth.redirect_uri): the page it gets back
  // tells the opener how the sign-in ended, and closes itself.
  ["GET", /^\/oauth\/callback$/, async (req, res) => {
    const [row] = await sql("SELECT mcp_oauth_callback_page($1, $2) AS page", [origin + req.url, origin]);
    send(res, 200, "text/html; charset=utf-8", row.page);
  }],
  ["POST", /^\/api\/servers\/([0-9a-f-]{36})\/tools\/([A-Za-z0-9_.-]+)$/, async (req, res, [id, tool]) => {
    const [row] = await sql("SELECT mcp_call_tool($1, $2, $3) AS result", [id, tool, await body(req)]);
    json(res, 200, row.result);
  }],
];

http
  .createServer(async (req, res) => {
    const path = new URL(req.url, origin).pathname;
    for (const [method, pattern, handle] of routes) {
      const match = req.method === method && pattern.exec(path);
      if (match) {
        try {
          await handle(req, res, match.slice(1));
        } catch (error) {
          // What mcp_oauth raised: its SQLSTATE, message and hint, for the page.
          json(res, 400, { sqlstate: error.code, error: error.message, hint: error.hint });
        }
        return;
      }
    }
    send(res, 404, "text/plain", "not found");
  })
  .listen(port, "127.0.0.1", () => console.log(`listening on ${origin}`));
