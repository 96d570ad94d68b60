// The connectors page of a chat product, as an application would ship it.
// The backend holds no OAuth or MCP logic: every action is one SQL
// statement of mcp_oauth, run as one pooled database role with the
// application's user set for the transaction (mcp_oauth.identity =
// 'setting:app.user_id'), as PostgREST and most web backends do. Card
// updates are pushed: the backend LISTENs for mcp_oauth's notifications and
// forwards each to its user's open pages as server-sent events.
//
//   PGHOST=... PGDATABASE=app PGUSER=app PORT=3000 APP_ORIGIN=http://127.0.0.1:3000 node server.mjs
import http from "node:http";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import pg from "pg";

const port = Number(process.env.PORT ?? 3000);
const origin = process.env.APP_ORIGIN ?? `http://127.0.0.1:${port}`;
// The application's users. A real product has its own sign-in; this one
// lets you pick a user, so that two can be compared side by side.
const users = (process.env.APP_USERS ?? "alice,bob").split(",");
// Signs the session cookie; a fresh one per start logs everybody out.
const sessionSecret = process.env.SESSION_SECRET ?? randomBytes(32).toString("hex");
const pool = new pg.Pool({ max: Number(process.env.POOL_SIZE ?? 4) });
const here = new URL(".", import.meta.url);

// One statement as `user`: the identity is set for this transaction only
// (set_config(..., true) is SET LOCAL with a bind parameter), so a pooled
// connection never carries one user's identity into another's request.
async function asUser(user, text, params = []) {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT set_config('app.user_id', $1, true)", [user]);
    const { rows } = await client.query(text, params);
    await client.query("COMMIT");
    return rows;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

// What a card shows; the status is derived in SQL from the view's columns.
const CONNECTORS = `
  SELECT id, name, url, auth_type, header_keys, last_error,
         CASE
           WHEN reauth_required THEN 're-authentication required'
           WHEN auth_type = 'oauth' AND NOT oauth_authorized THEN 'sign-in required'
           WHEN last_error IS NOT NULL THEN 'error: ' || last_error
           WHEN auth_type = 'oauth' THEN 'signed in'
           ELSE 'connected'
         END AS status
    FROM mcp_servers`;

const sign = (user) => createHmac("sha256", sessionSecret).update(user).digest("base64url");

function sessionUser(req) {
  const cookie = /(?:^|;\s*)session=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
  if (!cookie) return null;
  const [user, mac] = decodeURIComponent(cookie).split(".");
  const expected = Buffer.from(sign(user ?? ""));
  const given = Buffer.from(mac ?? "");
  return users.includes(user) && given.length === expected.length && timingSafeEqual(given, expected) ? user : null;
}

async function body(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw Object.assign(new Error("request body too large"), { status: 413 });
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text) return {};
  return (req.headers["content-type"] ?? "").startsWith("application/json")
    ? JSON.parse(text)
    : Object.fromEntries(new URLSearchParams(text));
}

const SECURITY_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "content-security-policy": "default-src 'self'; style-src 'self'; frame-ancestors 'none'",
};
// A header given as null is left out.
function send(res, status, type, payload, headers = {}) {
  const all = Object.entries({ "content-type": type, ...SECURITY_HEADERS, ...headers }).filter(([, v]) => v !== null);
  res.writeHead(status, Object.fromEntries(all));
  res.end(payload);
}
const json = (res, status, value) => send(res, status, "application/json", JSON.stringify(value));
const asset = (name, type) => async (req, res) => send(res, 200, type, await readFile(new URL(`public/${name}`, here)));

// Open pages by user, for the pushed updates.
const streams = new Map();

// The browser's only way to the database: these routes, each one statement.
// `user` is the session's user; routes marked public need none.
const routes = [
  ["GET", /^\/login$/, asset("login.html", "text/html; charset=utf-8"), "public"],
  ["GET", /^\/api\/users$/, async (req, res) => json(res, 200, users), "public"],
  ["POST", /^\/login$/, async (req, res) => {
    const { user } = await body(req);
    if (!users.includes(user)) return send(res, 400, "text/plain", "unknown user");
    send(res, 303, "text/plain", "", {
      location: "/",
      "set-cookie": `session=${encodeURIComponent(`${user}.${sign(user)}`)}; Path=/; HttpOnly; SameSite=Lax`,
    });
  }, "public"],
  ["POST", /^\/logout$/, async (req, res) =>
    send(res, 303, "text/plain", "", { location: "/login", "set-cookie": "session=; Path=/; Max-Age=0" }), "public"],
  ["GET", /^\/$/, asset("index.html", "text/html; charset=utf-8")],
  ["GET", /^\/app\.js$/, asset("app.js", "text/javascript"), "public"],
  ["GET", /^\/app\.css$/, asset("app.css", "text/css"), "public"],
  ["GET", /^\/api\/me$/, async (req, res, user) => json(res, 200, { user })],
  ["GET", /^\/api\/connectors$/, async (req, res, user) =>
    json(res, 200, await asUser(user, `${CONNECTORS} ORDER BY created_at, id`))],
  ["GET", /^\/api\/connectors\/([0-9a-f-]{36})$/, async (req, res, user, [id]) => {
    const [row] = await asUser(user, `${CONNECTORS} WHERE id = $1`, [id]);
    row ? json(res, 200, row) : json(res, 404, { sqlstate: "42704", error: "no such connector" });
  }],
  // Header values go to the database once, where the table's trigger seals
  // them; nothing ever reads them back (the view shows header names only).
  ["POST", /^\/api\/connectors$/, async (req, res, user) => {
    const { name, url, auth, headers = [] } = await body(req);
    const pairs = Object.fromEntries(headers.filter((h) => h.name).map((h) => [h.name, h.value]));
    const [row] = await asUser(user,
      "INSERT INTO user_mcp_servers (name, url, auth_type, headers) VALUES ($1, $2, $3, $4) RETURNING id",
      [name, url, auth === "headers" ? "headers" : "oauth", pairs]);
    json(res, 201, row);
  }],
  ["POST", /^\/api\/connectors\/([0-9a-f-]{36})\/sign-in$/, async (req, res, user, [id]) => {
    const [row] = await asUser(user, "SELECT mcp_oauth_start($1) AS url", [id]);
    json(res, 200, row);
  }],
  // The sign-in popup lands here (mcp_oauth.redirect_uri): the page it gets
  // back tells the opener how the sign-in ended, and closes itself.
  ["GET", /^\/oauth\/callback$/, async (req, res, user) => {
    const [row] = await asUser(user, "SELECT mcp_oauth_callback_page($1, $2) AS page", [origin + req.url, origin]);
    // The page brings its own Content-Security-Policy (its script by hash).
    send(res, 200, "text/html; charset=utf-8", row.page, { "content-security-policy": null });
  }],
  ["GET", /^\/api\/connectors\/([0-9a-f-]{36})\/tools$/, async (req, res, user, [id]) =>
    json(res, 200, await asUser(user, "SELECT name, title, description FROM mcp_list_tools($1) ORDER BY name", [id]))],
  ["POST", /^\/api\/connectors\/([0-9a-f-]{36})\/test$/, async (req, res, user, [id]) => {
    const [row] = await asUser(user, "SELECT mcp_test_server($1) AS result", [id]);
    json(res, 200, row.result);
  }],
  ["POST", /^\/api\/connectors\/([0-9a-f-]{36})\/disconnect$/, async (req, res, user, [id]) => {
    const [row] = await asUser(user, "SELECT mcp_oauth_disconnect($1) AS result", [id]);
    json(res, 200, row.result);
  }],
  ["DELETE", /^\/api\/connectors\/([0-9a-f-]{36})$/, async (req, res, user, [id]) => {
    const rows = await asUser(user, "DELETE FROM user_mcp_servers WHERE id = $1 RETURNING id", [id]);
    rows.length ? json(res, 200, rows[0]) : json(res, 404, { sqlstate: "42704", error: "no such connector" });
  }],
  // Server-sent events: this user's share of mcp_oauth's notifications.
  ["GET", /^\/api\/events$/, async (req, res, user) => {
    res.writeHead(200, { "content-type": "text/event-stream", ...SECURITY_HEADERS });
    res.write(": connected\n\n");
    if (!streams.has(user)) streams.set(user, new Set());
    streams.get(user).add(res);
    const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 25000);
    req.on("close", () => {
      clearInterval(keepAlive);
      streams.get(user)?.delete(res);
    });
  }],
];

// mcp_oauth notifies after commit: mcp_oauth_signed_in when a sign-in has
// stored its tokens, mcp_oauth_reauth when a row needs a new sign-in (a
// refused refresh, a revoked grant, a trigger). Each payload names the row
// and its owner; only the owner's pages hear of it.
const CHANNELS = { mcp_oauth_signed_in: "signed_in", mcp_oauth_reauth: "reauth" };
async function listen() {
  const client = new pg.Client();
  client.on("notification", ({ channel, payload }) => {
    let event;
    try {
      event = JSON.parse(payload);
    } catch {
      return;
    }
    for (const res of streams.get(event.user_id) ?? []) {
      res.write(`event: ${CHANNELS[channel]}\ndata: ${JSON.stringify({ server_id: event.server_id })}\n\n`);
    }
  });
  client.on("error", () => {});
  try {
    await client.connect();
    for (const channel of Object.keys(CHANNELS)) await client.query(`LISTEN ${channel}`);
  } catch {
    client.end().catch(() => {});
    setTimeout(listen, 1000);
    return;
  }
  // A lost connection (a restart, a failover) is opened again; pages then
  // reload their cards, since notifications sent meanwhile are gone.
  client.on("end", () => setTimeout(listen, 1000));
  for (const set of streams.values()) for (const res of set) res.write("event: resync\ndata: {}\n\n");
}

http
  .createServer(async (req, res) => {
    const path = new URL(req.url, origin).pathname;
    for (const [method, pattern, handle, access] of routes) {
      const match = req.method === method && pattern.exec(path);
      if (!match) continue;
      const user = sessionUser(req);
      if (!user && access !== "public") {
        return path.startsWith("/api/") ? json(res, 401, { error: "not signed in" }) : send(res, 303, "text/plain", "", { location: "/login" });
      }
      try {
        await handle(req, res, user, match.slice(1));
      } catch (error) {
        // What mcp_oauth raised, for the page: its SQLSTATE, message and
        // hint (never a secret: mcp_oauth keeps them out of its errors).
        json(res, error.status ?? 400, { sqlstate: error.code, error: error.message, hint: error.hint });
      }
      return;
    }
    send(res, 404, "text/plain", "not found");
  })
  .listen(port, "127.0.0.1", async () => {
    await listen();
    console.log(`listening on ${origin}`);
  });
