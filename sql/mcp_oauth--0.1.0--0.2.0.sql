-- mcp_oauth 0.1.0 -> 0.2.0. Every schema change since the 0.1.0 release,
-- so that ALTER EXTENSION mcp_oauth UPDATE ends with the schema of a fresh
-- 0.2.0 install (tests/upgrade/run.sh compares them object for object).

\echo Use "ALTER EXTENSION mcp_oauth UPDATE" to load this file. \quit

-- The callback page for the sign-in popup.
CREATE FUNCTION "mcp_oauth_callback_page"(
	"callback_url" TEXT,
	"target_origin" TEXT
) RETURNS TEXT
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'mcp_oauth_callback_page_wrapper';

-- Disconnect with token revocation (RFC 7009).
CREATE FUNCTION "mcp_oauth_disconnect"(
	"server_id" uuid
) RETURNS jsonb
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'mcp_oauth_disconnect_wrapper';

-- All of a user's tools in one query, and a call by qualified name.
CREATE FUNCTION "mcp_user_tools"() RETURNS TABLE (
	"server_id" uuid,
	"slug" TEXT,
	"status" TEXT,
	"name" TEXT,
	"qualified_name" TEXT,
	"description" TEXT,
	"input_schema" jsonb,
	"output_schema" jsonb,
	"error" TEXT
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'mcp_user_tools_wrapper';

CREATE FUNCTION "mcp_call_user_tool"(
	"qualified_name" TEXT,
	"args" jsonb DEFAULT '{}'
) RETURNS jsonb
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'mcp_call_user_tool_wrapper';

REVOKE ALL ON FUNCTION
    @extschema@.mcp_oauth_callback_page(text, text),
    @extschema@.mcp_oauth_disconnect(uuid),
    @extschema@.mcp_user_tools(),
    @extschema@.mcp_call_user_tool(text, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.mcp_oauth_callback_page(text, text),
    @extschema@.mcp_oauth_disconnect(uuid),
    @extschema@.mcp_user_tools(),
    @extschema@.mcp_call_user_tool(text, jsonb)
TO mcp_oauth_user;

COMMENT ON FUNCTION @extschema@.mcp_oauth_callback_page(text, text) IS
    'For an application''s callback route: runs mcp_oauth_callback and returns an HTML page that posts {type: "mcp_oauth_done", success, server_id, error} to window.opener at exactly target_origin (an origin, never *) and closes itself.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_disconnect(uuid) IS
    'Disconnects a server: revokes its tokens at the authorization server when it offers revocation (RFC 7009), then forgets them as mcp_oauth_reset does, even if revocation failed. Returns {server_id, revocation: revoked|not_offered|no_tokens|failed, detail}.';
COMMENT ON FUNCTION @extschema@.mcp_user_tools() IS
    'Every tool the current user can use now, across their enabled servers, with a qualified_name (slug__tool) unique across servers and valid as an LLM function name; a server that needs a sign-in or fails is a row with status needs_sign_in or error.';
COMMENT ON FUNCTION @extschema@.mcp_call_user_tool(text, jsonb) IS
    'Calls a tool by its qualified_name from mcp_user_tools, on the server it names.';

-- \d+ explains every column.
COMMENT ON COLUMN @extschema@.user_mcp_servers.id IS 'The server''s id, what every function takes; random (gen_random_uuid()).';
COMMENT ON COLUMN @extschema@.user_mcp_servers.name IS 'A display name; the slug is derived from it when not given.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.enabled IS 'Disabled servers refuse calls (55000) and are left out of mcp_user_tools().';
COMMENT ON COLUMN @extschema@.user_mcp_servers.last_error IS 'The last failure the extension recorded for this server (sanitised, at most 1000 characters, never a secret); cleared by a successful sign-in.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.created_at IS 'When the row was inserted.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.updated_at IS 'When the row was last changed (by the table''s trigger).';
COMMENT ON COLUMN @extschema@.mcp_servers.id IS 'The server''s id, what every function takes.';
COMMENT ON COLUMN @extschema@.mcp_servers.user_id IS 'Owner (always the current user: row-level security).';
COMMENT ON COLUMN @extschema@.mcp_servers.slug IS 'Short name, unique per user; the prefix of qualified tool names in mcp_user_tools().';
COMMENT ON COLUMN @extschema@.mcp_servers.name IS 'Display name.';
COMMENT ON COLUMN @extschema@.mcp_servers.url IS 'The MCP endpoint.';
COMMENT ON COLUMN @extschema@.mcp_servers.enabled IS 'Whether calls are allowed.';
COMMENT ON COLUMN @extschema@.mcp_servers.auth_type IS '''headers'' or ''oauth''.';
COMMENT ON COLUMN @extschema@.mcp_servers.oauth_authorized IS 'An OAuth server with tokens and no pending re-authentication: ready to call.';
COMMENT ON COLUMN @extschema@.mcp_servers.header_keys IS 'The names of the configured headers; never their values.';
COMMENT ON COLUMN @extschema@.mcp_servers.reauth_required IS 'The user must sign in again: call mcp_oauth_start().';
COMMENT ON COLUMN @extschema@.mcp_servers.last_error IS 'The last failure recorded for this server.';
COMMENT ON COLUMN @extschema@.mcp_servers.created_at IS 'When the server was added.';
COMMENT ON COLUMN @extschema@.mcp_servers.updated_at IS 'When the server was last changed.';

-- Observability.
CREATE FUNCTION "mcp_oauth_server_stats"() RETURNS TABLE (
	"server_id" uuid,
	"calls" bigint,
	"errors" bigint,
	"errors_by_sqlstate" jsonb,
	"refreshes" bigint,
	"sign_ins" bigint,
	"last_success_epoch" double precision,
	"last_failure_epoch" double precision,
	"mean_latency_ms" double precision,
	"p95_latency_ms" double precision,
	"kept_in" TEXT
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'mcp_oauth_server_stats_wrapper';
REVOKE ALL ON FUNCTION @extschema@.mcp_oauth_server_stats() FROM PUBLIC;
-- Per-server counters for administrators and monitoring (README,
-- "Observability"). The view runs as its owner, so it names every user's
-- servers: granted to pg_monitor, not to application roles.
CREATE VIEW @extschema@.mcp_oauth_stats AS
SELECT s.server_id, u.user_id, u.slug, s.calls, s.errors, s.errors_by_sqlstate, s.refreshes, s.sign_ins,
       to_timestamp(s.last_success_epoch) AS last_success, to_timestamp(s.last_failure_epoch) AS last_failure,
       s.mean_latency_ms, s.p95_latency_ms, s.kept_in
  FROM @extschema@.mcp_oauth_server_stats() s
  LEFT JOIN @extschema@.user_mcp_servers u ON u.id = s.server_id;
COMMENT ON VIEW @extschema@.mcp_oauth_stats IS
    'Per-server counters since the server started (preloaded: for the whole cluster) or for this backend (not preloaded: kept_in = backend): MCP requests, errors by SQLSTATE, refreshes, sign-ins, last success and failure, mean and p95 latency. For administrators (pg_monitor).';
COMMENT ON FUNCTION @extschema@.mcp_oauth_server_stats() IS
    'The counters behind the view mcp_oauth_stats, by server id (times as Unix epochs). Not for application roles: it covers every user''s servers.';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.server_id IS 'The server''s id.';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.user_id IS 'Its owner (NULL when the row is gone).';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.slug IS 'Its slug (NULL when the row is gone).';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.calls IS 'MCP requests made for it (tool calls, listings, resources, prompts, tests).';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.errors IS 'Of those, the ones that failed.';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.errors_by_sqlstate IS 'Failures by SQLSTATE, e.g. {"MC001": 2, "MC007": 1}.';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.refreshes IS 'Token refreshes that succeeded.';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.sign_ins IS 'Sign-ins that completed.';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.last_success IS 'When a request last succeeded.';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.last_failure IS 'When a request last failed.';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.mean_latency_ms IS 'Mean time of a request, in milliseconds, from the call to the result (refreshes and retries included).';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.p95_latency_ms IS '95th percentile of that time (the bound of a 25%-wide bucket: at most 25% above the true value).';
COMMENT ON COLUMN @extschema@.mcp_oauth_stats.kept_in IS 'cluster (shared memory: the library is preloaded) or backend (this backend''s own counters).';
REVOKE ALL ON TABLE @extschema@.mcp_oauth_stats FROM PUBLIC;
GRANT SELECT ON @extschema@.mcp_oauth_stats TO pg_monitor;
-- A view checks EXECUTE on the functions it calls as its reader.
GRANT EXECUTE ON FUNCTION @extschema@.mcp_oauth_server_stats() TO pg_monitor;

-- Parallel tool calls in one statement.
CREATE FUNCTION "mcp_call_tools"(
	"calls" jsonb
) RETURNS jsonb
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'mcp_call_tools_wrapper';
REVOKE ALL ON FUNCTION @extschema@.mcp_call_tools(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.mcp_call_tools(jsonb) TO mcp_oauth_user;
COMMENT ON FUNCTION @extschema@.mcp_call_tools(jsonb) IS
    'Runs an array of tool calls ({server_id, name, arguments} or {name: qualified_name, arguments}, at most 100) at once in this backend; returns their results in order, each {id?, ok: true, result} or {id?, ok: false, error: {sqlstate, message, detail, hint}}.';
