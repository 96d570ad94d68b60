-- mcp_oauth schema: the table, its row-level security, triggers, the listing
-- view, the application role and its grants. Loaded by CREATE EXTENSION after
-- the functions pgrx generates (see extension_sql_file! in src/lib.rs).
--
-- Every function here pins search_path and qualifies our own objects with
-- @extschema@, so a hostile schema earlier in the caller's path changes nothing.

-- The role application roles are granted. Roles are cluster-wide: a second
-- database reuses it, and DROP EXTENSION leaves it (it then owns nothing and
-- holds no privileges, so DROP ROLE mcp_oauth_user succeeds).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'mcp_oauth_user') THEN
        CREATE ROLE mcp_oauth_user NOLOGIN;
    END IF;
END
$$;

CREATE TABLE @extschema@.user_mcp_servers (
    id                  uuid        NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    user_id             text        NOT NULL DEFAULT @extschema@.mcp_current_user_id(),
    slug                text        NOT NULL,
    name                text        NOT NULL,
    url                 text        NOT NULL,
    headers             jsonb       NOT NULL DEFAULT '{}',
    enabled             boolean     NOT NULL DEFAULT true,
    auth_type           text        NOT NULL DEFAULT 'headers',
    oauth_metadata      jsonb,
    oauth_tokens        bytea,
    oauth_code_verifier text,
    oauth_client_secret text,
    reauth_required     boolean     NOT NULL DEFAULT false,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    generation          bigint      NOT NULL DEFAULT 0,
    mcp_protocol        jsonb,
    oauth_authorized    boolean     GENERATED ALWAYS AS (
                            auth_type = 'oauth' AND oauth_tokens IS NOT NULL AND NOT reauth_required
                        ) STORED,
    header_keys         text[]      GENERATED ALWAYS AS (@extschema@.mcp_oauth_header_keys(headers)) STORED,

    CONSTRAINT user_mcp_servers_pkey PRIMARY KEY (id),
    CONSTRAINT user_mcp_servers_user_slug_key UNIQUE (user_id, slug),
    -- The trigger below reports these with precise messages; the constraints
    -- are the backstop that holds whatever a trigger does.
    CONSTRAINT user_mcp_servers_user_id_check CHECK (pg_catalog.length(user_id) BETWEEN 1 AND 256),
    CONSTRAINT user_mcp_servers_slug_check CHECK (slug ~ '^[a-z0-9_-]{1,24}$'),
    CONSTRAINT user_mcp_servers_name_check CHECK (pg_catalog.char_length(name) BETWEEN 1 AND 80),
    CONSTRAINT user_mcp_servers_url_check CHECK (@extschema@.mcp_oauth_url_problem(url) IS NULL),
    CONSTRAINT user_mcp_servers_headers_check CHECK (@extschema@.mcp_oauth_headers_problem(headers, true) IS NULL),
    CONSTRAINT user_mcp_servers_auth_type_check CHECK (auth_type IN ('headers', 'oauth', 'client_credentials', 'workload_identity')),
    CONSTRAINT user_mcp_servers_oauth_metadata_check CHECK (
        oauth_metadata IS NULL OR pg_catalog.jsonb_typeof(oauth_metadata) = 'object'),
    CONSTRAINT user_mcp_servers_last_error_check CHECK (pg_catalog.char_length(last_error) <= 1000)
);

CREATE INDEX user_mcp_servers_user_enabled_idx ON @extschema@.user_mcp_servers (user_id, enabled);

-- Rows are user data: pg_dump must dump them (an extension's tables are
-- otherwise skipped).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.user_mcp_servers', '');

COMMENT ON TABLE @extschema@.user_mcp_servers IS
    'MCP servers (connectors) of each user. Row-level security keeps every row to its owner; secret columns are not readable by mcp_oauth_user. List rows through the mcp_servers view.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.id IS 'The server''s id, what every function takes; random (gen_random_uuid()).';
COMMENT ON COLUMN @extschema@.user_mcp_servers.name IS 'A display name; the slug is derived from it when not given.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.enabled IS 'Disabled servers refuse calls (55000) and are left out of mcp_user_tools().';
COMMENT ON COLUMN @extschema@.user_mcp_servers.last_error IS 'The last failure the extension recorded for this server (sanitised, at most 1000 characters, never a secret); cleared by a successful sign-in.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.created_at IS 'When the row was inserted.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.updated_at IS 'When the row was last changed (by the table''s trigger).';
COMMENT ON COLUMN @extschema@.user_mcp_servers.user_id IS 'Owner; defaults to mcp_current_user_id().';
COMMENT ON COLUMN @extschema@.user_mcp_servers.slug IS 'Short name, ^[a-z0-9_-]{1,24}$, unique per user; derived from name when not given.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.url IS 'The MCP endpoint: absolute http(s) URL, no credentials, no fragment, at most 2048 characters.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.headers IS 'Headers sent in headers mode, e.g. {"Authorization": "Bearer ..."}. Values are secrets: write-only for applications.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.auth_type IS '''headers'' (send the row''s headers), ''oauth'' (the user signs in with OAuth 2.1), ''client_credentials'' (the client''s own token, from mcp_oauth_set_client or mcp_oauth_set_client_key) or ''workload_identity'' (the database''s workload token, mcp_oauth.workload_token_file).';
COMMENT ON COLUMN @extschema@.user_mcp_servers.oauth_metadata IS 'Discovery results and the public parts of the client registration.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.oauth_tokens IS 'Access and refresh token. Secret: never readable by applications.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.oauth_code_verifier IS 'PKCE verifier of the sign-in in progress. Secret.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.oauth_client_secret IS 'Client secret of a confidential client, or the private key (PEM) of a private_key_jwt client. Secret.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.reauth_required IS 'The user must sign in again (set by triggers, failed refreshes and step-up).';
COMMENT ON COLUMN @extschema@.user_mcp_servers.oauth_authorized IS 'An OAuth row with tokens and no pending re-authentication.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.header_keys IS 'The names of the configured headers, sorted; never their values.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.mcp_protocol IS 'What the extension learned about the MCP server and shares between backends: the protocol revision it speaks, a session-based server''s session, the tool parameters sent as headers (x-mcp-header). Forgotten when url, auth_type or headers change.';
COMMENT ON COLUMN @extschema@.user_mcp_servers.generation IS 'Counts changes of the endpoint and credentials (url, auth_type, headers, tokens, a new reauth_required); writes the extension computed from an older read are skipped.';

-- Row-level security, enabled and forced (the owner is bound too; only
-- superusers and BYPASSRLS roles see every row). The identity is computed
-- once per statement thanks to the scalar sub-select.
ALTER TABLE @extschema@.user_mcp_servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.user_mcp_servers FORCE ROW LEVEL SECURITY;

CREATE POLICY user_mcp_servers_select ON @extschema@.user_mcp_servers FOR SELECT
    USING (user_id = (SELECT @extschema@.mcp_current_user_id()));
CREATE POLICY user_mcp_servers_insert ON @extschema@.user_mcp_servers FOR INSERT
    WITH CHECK (user_id = (SELECT @extschema@.mcp_current_user_id()));
CREATE POLICY user_mcp_servers_update ON @extschema@.user_mcp_servers FOR UPDATE
    USING (user_id = (SELECT @extschema@.mcp_current_user_id()))
    WITH CHECK (user_id = (SELECT @extschema@.mcp_current_user_id()));
CREATE POLICY user_mcp_servers_delete ON @extschema@.user_mcp_servers FOR DELETE
    USING (user_id = (SELECT @extschema@.mcp_current_user_id()));

-- BEFORE INSERT OR UPDATE: precise validation errors (never echoing a header
-- value or secret), slug derivation, reauth on a change of endpoint or auth
-- type, timestamps.
CREATE FUNCTION @extschema@.user_mcp_servers_before_write() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text;
    base_slug text;
    candidate text;
    suffix int := 1;
BEGIN
    IF NEW.user_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'not_null_violation', MESSAGE = 'an MCP server needs an owner',
            DETAIL = 'user_id is null.', HINT = 'Leave user_id out: it defaults to mcp_current_user_id().',
            TABLE = TG_TABLE_NAME, COLUMN = 'user_id';
    END IF;
    IF NEW.name IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'not_null_violation', MESSAGE = 'an MCP server needs a name',
            TABLE = TG_TABLE_NAME, COLUMN = 'name';
    END IF;
    NEW.name := btrim(NEW.name);
    IF char_length(NEW.name) = 0 OR char_length(NEW.name) > 80 THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'invalid MCP server name',
            DETAIL = format('A name has 1 to 80 characters besides leading and trailing spaces; this one has %s.', char_length(NEW.name)),
            TABLE = TG_TABLE_NAME, COLUMN = 'name', CONSTRAINT = 'user_mcp_servers_name_check';
    END IF;
    IF NEW.url IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'not_null_violation', MESSAGE = 'an MCP server needs a URL',
            TABLE = TG_TABLE_NAME, COLUMN = 'url';
    END IF;
    problem := @extschema@.mcp_oauth_url_problem(NEW.url);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'invalid MCP server URL', DETAIL = problem,
            HINT = 'Use the absolute http(s) URL of the MCP endpoint, e.g. https://mcp.example.com/mcp.',
            TABLE = TG_TABLE_NAME, COLUMN = 'url', CONSTRAINT = 'user_mcp_servers_url_check';
    END IF;
    IF NEW.headers IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'not_null_violation', MESSAGE = 'headers cannot be null',
            HINT = 'Use ''{}'' for no headers.', TABLE = TG_TABLE_NAME, COLUMN = 'headers';
    END IF;
    IF TG_OP = 'INSERT' OR NEW.headers IS DISTINCT FROM OLD.headers THEN
        -- Plaintext values are checked strictly; values already sealed for
        -- this row (kept from before) pass as they are.
        problem := @extschema@.mcp_oauth_headers_problem(NEW.headers, true);
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'invalid MCP server headers', DETAIL = problem,
                HINT = 'headers is a JSON object of at most 20 header names to string values, e.g. {"Authorization": "Bearer ..."}.',
                TABLE = TG_TABLE_NAME, COLUMN = 'headers', CONSTRAINT = 'user_mcp_servers_headers_check';
        END IF;
        -- Header values are secrets: sealed before the row is written.
        NEW.headers := @extschema@.mcp_oauth_seal_headers(NEW.id, NEW.headers);
    END IF;
    IF NEW.auth_type IS NULL OR NEW.auth_type NOT IN ('headers', 'oauth', 'client_credentials', 'workload_identity') THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'invalid auth_type',
            DETAIL = format('auth_type is %s; it must be ''headers'', ''oauth'', ''client_credentials'' or ''workload_identity''.', coalesce(quote_literal(left(NEW.auth_type, 40)), 'null')),
            TABLE = TG_TABLE_NAME, COLUMN = 'auth_type', CONSTRAINT = 'user_mcp_servers_auth_type_check';
    END IF;

    IF NEW.slug IS NULL THEN
        -- Derive a slug unique among this user's rows: "github", "github-2", ...
        -- Concurrent inserts for one user take turns here (the lock is held
        -- to the end of the transaction), so they do not pick the same slug.
        PERFORM pg_advisory_xact_lock(hashtextextended('mcp_oauth.slug:' || NEW.user_id, 0));
        base_slug := @extschema@.mcp_oauth_slug(NEW.name);
        candidate := base_slug;
        WHILE EXISTS (SELECT FROM @extschema@.user_mcp_servers s
                      WHERE s.user_id = NEW.user_id AND s.slug = candidate AND s.id IS DISTINCT FROM NEW.id) LOOP
            suffix := suffix + 1;
            candidate := rtrim(left(base_slug, 23 - length(suffix::text)), '-') || '-' || suffix;
        END LOOP;
        NEW.slug := candidate;
    ELSIF NEW.slug !~ '^[a-z0-9_-]{1,24}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'invalid slug',
            DETAIL = format('%s is not 1 to 24 characters of a-z, 0-9, _ and -.', quote_literal(left(NEW.slug, 40))),
            HINT = 'Leave slug out to derive it from the name.',
            TABLE = TG_TABLE_NAME, COLUMN = 'slug', CONSTRAINT = 'user_mcp_servers_slug_check';
    END IF;

    IF TG_OP = 'INSERT' THEN
        NEW.generation := 0;
    ELSE
        NEW.created_at := OLD.created_at;
        NEW.updated_at := now();
        -- Credentials belong to an endpoint and an auth mode: a change of
        -- either forgets them, and an OAuth row must sign in again.
        IF NEW.url IS DISTINCT FROM OLD.url OR NEW.auth_type IS DISTINCT FROM OLD.auth_type THEN
            NEW.oauth_tokens := NULL;
            NEW.oauth_code_verifier := NULL;
            NEW.oauth_client_secret := NULL;
            NEW.oauth_metadata := NULL;
            NEW.reauth_required := (NEW.auth_type = 'oauth');
        END IF;
        -- What was learned about a server belongs to that server, reached
        -- with those credentials.
        IF NEW.url IS DISTINCT FROM OLD.url OR NEW.auth_type IS DISTINCT FROM OLD.auth_type
           OR NEW.headers IS DISTINCT FROM OLD.headers THEN
            NEW.mcp_protocol := NULL;
        END IF;
        -- Writes the extension computed from an older read of the row are
        -- conditional on this: a change of endpoint or credentials, or a
        -- new demand to sign in, makes them miss. (It only grows; the
        -- extension may bump it itself, as a reset does.)
        NEW.generation := greatest(NEW.generation, OLD.generation);
        IF NEW.url IS DISTINCT FROM OLD.url OR NEW.auth_type IS DISTINCT FROM OLD.auth_type
           OR NEW.headers IS DISTINCT FROM OLD.headers OR NEW.oauth_tokens IS DISTINCT FROM OLD.oauth_tokens
           OR (NEW.reauth_required AND NOT OLD.reauth_required) THEN
            NEW.generation := NEW.generation + 1;
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER user_mcp_servers_before_write
    BEFORE INSERT OR UPDATE ON @extschema@.user_mcp_servers
    FOR EACH ROW EXECUTE FUNCTION @extschema@.user_mcp_servers_before_write();

-- AFTER: tell listeners that a row now needs a new sign-in.
CREATE FUNCTION @extschema@.user_mcp_servers_notify_reauth() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('mcp_oauth_reauth',
                      json_build_object('server_id', NEW.id, 'user_id', NEW.user_id)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER user_mcp_servers_notify_reauth_insert
    AFTER INSERT ON @extschema@.user_mcp_servers
    FOR EACH ROW WHEN (NEW.reauth_required)
    EXECUTE FUNCTION @extschema@.user_mcp_servers_notify_reauth();
CREATE TRIGGER user_mcp_servers_notify_reauth_update
    AFTER UPDATE OF reauth_required, url, auth_type ON @extschema@.user_mcp_servers
    FOR EACH ROW WHEN (NEW.reauth_required AND NOT OLD.reauth_required)
    EXECUTE FUNCTION @extschema@.user_mcp_servers_notify_reauth();

-- For applications' own tables: marks the OAuth rows of the user a changed
-- (or deleted) row belongs to as needing a new sign-in.
--
--   CREATE TRIGGER users_revoke_mcp
--       AFTER UPDATE OF password_hash OR DELETE ON app.users
--       FOR EACH ROW EXECUTE FUNCTION mcp_mark_reauth_required('id');
--
-- Argument 1: the column holding the user id (default 'user_id'); its text
-- form must equal user_mcp_servers.user_id. Use a WHEN clause to narrow the
-- trigger, e.g. WHEN (OLD.active AND NOT NEW.active).
--
-- SECURITY DEFINER so it reaches the affected user's rows whoever runs the
-- statement (row-level security would otherwise hide another user's rows);
-- it only ever sets reauth_required and last_error, and ends a sign-in in
-- progress. EXECUTE is granted to no
-- one: an administrator grants it to the role that owns the application table.
CREATE FUNCTION @extschema@.mcp_mark_reauth_required() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    user_column text := coalesce(TG_ARGV[0], 'user_id');
    source_row jsonb;
    target_user text;
BEGIN
    IF TG_LEVEL <> 'ROW' THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = 'mcp_mark_reauth_required must be a FOR EACH ROW trigger';
    END IF;
    IF TG_NARGS > 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'mcp_mark_reauth_required takes at most one argument, the user id column';
    END IF;
    IF TG_OP = 'DELETE' THEN
        source_row := to_jsonb(OLD);
    ELSE
        source_row := to_jsonb(NEW);
    END IF;
    IF NOT source_row ? user_column THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_column',
            MESSAGE = format('mcp_mark_reauth_required: %I.%I has no column %I', TG_TABLE_SCHEMA, TG_TABLE_NAME, user_column),
            HINT = 'Pass the column holding the user id as the trigger argument, e.g. EXECUTE FUNCTION mcp_mark_reauth_required(''id'').';
    END IF;
    -- On Citus a distributed or reference table's trigger runs where its
    -- shard is, and the rows live in the coordinator's user_mcp_servers
    -- (a worker has an empty one): marking nothing there must not pass in
    -- silence. A reference table's placement on the coordinator does the
    -- work, so its placements on workers step aside; anything else fails.
    -- (Nested IFs: the inner statements name Citus's catalogs, and are
    -- parsed only where they exist.)
    IF to_regclass('pg_catalog.pg_dist_local_group') IS NOT NULL THEN
      IF (SELECT groupid FROM pg_catalog.pg_dist_local_group) <> 0 THEN
        IF NOT EXISTS (
            SELECT FROM pg_catalog.pg_dist_shard s
              JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid = s.logicalrelid
              JOIN pg_catalog.pg_dist_placement pl ON pl.shardid = s.shardid
             WHERE s.shardid = substring(TG_TABLE_NAME FROM '_([0-9]+)$')::bigint
               AND p.partmethod = 'n' AND pl.groupid = 0) THEN
            RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                MESSAGE = format('mcp_mark_reauth_required ran on a Citus worker (%I.%I), where user_mcp_servers holds no rows', TG_TABLE_SCHEMA, TG_TABLE_NAME),
                HINT = 'Attach it to a table of the coordinator: a local table, or a reference table with the coordinator in the metadata (citus_set_coordinator_host).';
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
      END IF;
    END IF;
    target_user := source_row ->> user_column;
    IF target_user IS NOT NULL THEN
        -- A sign-in in progress was started before the change: it ends too.
        UPDATE @extschema@.user_mcp_servers
           SET reauth_required = true,
               last_error = left(format('sign-in revoked by a change to %I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME), 1000),
               oauth_metadata = oauth_metadata - 'flow',
               oauth_code_verifier = NULL
         WHERE user_id = target_user AND auth_type = 'oauth'
           AND (NOT reauth_required OR oauth_metadata ? 'flow');
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.mcp_mark_reauth_required() IS
    'Trigger function for application tables: marks the OAuth servers of the row''s user reauth_required. Argument: the user id column (default user_id).';

-- The listing: public columns only. security_invoker, so row-level security
-- applies to the caller exactly as on the table.
CREATE VIEW @extschema@.mcp_servers WITH (security_invoker = true, security_barrier = true) AS
SELECT id, user_id, slug, name, url, enabled, auth_type, oauth_authorized, header_keys,
       reauth_required, last_error, created_at, updated_at
  FROM @extschema@.user_mcp_servers;

COMMENT ON VIEW @extschema@.mcp_servers IS
    'The current user''s MCP servers without secrets: auth_type, oauth_authorized, header_keys, reauth_required, last_error and the public columns.';
COMMENT ON COLUMN @extschema@.mcp_servers.id IS 'The server''s id, what every function takes.';
COMMENT ON COLUMN @extschema@.mcp_servers.user_id IS 'Owner (always the current user: row-level security).';
COMMENT ON COLUMN @extschema@.mcp_servers.slug IS 'Short name, unique per user; the prefix of qualified tool names in mcp_user_tools().';
COMMENT ON COLUMN @extschema@.mcp_servers.name IS 'Display name.';
COMMENT ON COLUMN @extschema@.mcp_servers.url IS 'The MCP endpoint.';
COMMENT ON COLUMN @extschema@.mcp_servers.enabled IS 'Whether calls are allowed.';
COMMENT ON COLUMN @extschema@.mcp_servers.auth_type IS '''headers'', ''oauth'', ''client_credentials'' or ''workload_identity''.';
COMMENT ON COLUMN @extschema@.mcp_servers.oauth_authorized IS 'An OAuth server with tokens and no pending re-authentication: ready to call.';
COMMENT ON COLUMN @extschema@.mcp_servers.header_keys IS 'The names of the configured headers; never their values.';
COMMENT ON COLUMN @extschema@.mcp_servers.reauth_required IS 'The user must sign in again: call mcp_oauth_start().';
COMMENT ON COLUMN @extschema@.mcp_servers.last_error IS 'The last failure recorded for this server.';
COMMENT ON COLUMN @extschema@.mcp_servers.created_at IS 'When the server was added.';
COMMENT ON COLUMN @extschema@.mcp_servers.updated_at IS 'When the server was last changed.';

COMMENT ON FUNCTION @extschema@.mcp_current_user_id() IS
    'The current user''s id, as mcp_oauth.identity says: the role (default), a per-request setting, or a JWT claim. Errors (28000) when there is none.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_start(uuid) IS
    'Starts an OAuth sign-in for one of your servers: discovery (RFC 9728, RFC 8414/OIDC), client (pre-registered > Client ID Metadata Document > RFC 7591), PKCE S256 and a signed state. Returns the URL to send the user to.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_finish(text, text, text) IS
    'Completes a sign-in from the callback''s state, code and (RFC 9207) iss: checks the state, exchanges the code, stores the tokens. Returns the server id.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_callback(text) IS
    'mcp_oauth_finish from the whole redirect URL; an error response from the authorization server raises MC004.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_callback_page(text, text) IS
    'For an application''s callback route: runs mcp_oauth_callback and returns an HTML page that posts {type: "mcp_oauth_done", success, server_id, error} to window.opener at exactly target_origin (an origin, never *) and closes itself.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_disconnect(uuid) IS
    'Disconnects a server: revokes its tokens at the authorization server when it offers revocation (RFC 7009), then forgets them as mcp_oauth_reset does, even if revocation failed. Returns {server_id, revocation: revoked|not_offered|no_tokens|failed, detail}.';
COMMENT ON FUNCTION @extschema@.mcp_user_tools() IS
    'Every tool the current user can use now, across their enabled servers, with a qualified_name (slug__tool) unique across servers and valid as an LLM function name; a server that needs a sign-in or fails is a row with status needs_sign_in or error.';
COMMENT ON FUNCTION @extschema@.mcp_call_user_tool(text, jsonb) IS
    'Calls a tool by its qualified_name from mcp_user_tools, on the server it names.';
COMMENT ON FUNCTION @extschema@.mcp_call_tools(jsonb) IS
    'Runs an array of tool calls ({server_id, name, arguments} or {name: qualified_name, arguments}, at most 100) at once in this backend; returns their results in order, each {id?, ok: true, result} or {id?, ok: false, error: {sqlstate, message, detail, hint}}.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_reset(uuid) IS
    'Forgets a server''s tokens, sign-in in progress, client registration and last error.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_enterprise_sign_in(uuid, text) IS
    'Signs in with no browser (enterprise-managed authorization): the user''s ID token from the identity provider in mcp_oauth.idp_token_endpoint is exchanged there for an identity assertion grant (RFC 8693), which the row''s client redeems at the server''s authorization server (RFC 7523). The ID token is used once and never stored. Returns the server id.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_set_client_key(uuid, text, text, text, text) IS
    'Sets a pre-registered client that authenticates with a private key (private_key_jwt, RFC 7523): its PEM (checked, then sealed), algorithm (default ES256) and key id (the JWT kid).';
COMMENT ON FUNCTION @extschema@.mcp_oauth_set_client(uuid, text, text) IS
    'Sets a pre-registered OAuth client (and secret) for a server; it is used before Client ID Metadata Documents and dynamic registration, and by client_credentials and workload_identity servers to obtain their token.';
COMMENT ON FUNCTION @extschema@.mcp_list_tools(uuid) IS
    'The tools of one of your servers, all pages: name, title, description, input_schema, output_schema, annotations.';
COMMENT ON FUNCTION @extschema@.mcp_call_tool(uuid, text, jsonb) IS
    'Calls a tool and returns the CallToolResult as jsonb (content, structuredContent, isError). A tool error is a result, not an SQL error.';
COMMENT ON FUNCTION @extschema@.mcp_call_tool(uuid, text, jsonb, jsonb, text) IS
    'Answers an input-required result: calls the tool again with input_responses (keyed as the result''s inputRequests) and the result''s requestState, echoed unchanged.';
COMMENT ON FUNCTION @extschema@.mcp_list_resources(uuid) IS
    'The resources of one of your servers, all pages: uri, name, title, description, mime_type, size, annotations, and the whole definition.';
COMMENT ON FUNCTION @extschema@.mcp_list_resource_templates(uuid) IS
    'The resource templates of one of your servers, all pages: uri_template, name, title, description, mime_type, annotations, and the whole definition.';
COMMENT ON FUNCTION @extschema@.mcp_read_resource(uuid, text) IS
    'Reads a resource and returns the ReadResourceResult as jsonb (contents: text or base64 blob per item).';
COMMENT ON FUNCTION @extschema@.mcp_read_resource(uuid, text, jsonb, text) IS
    'Answers an input-required result of mcp_read_resource: reads again with input_responses and the echoed requestState.';
COMMENT ON FUNCTION @extschema@.mcp_list_prompts(uuid) IS
    'The prompts of one of your servers, all pages: name, title, description, arguments, and the whole definition.';
COMMENT ON FUNCTION @extschema@.mcp_get_prompt(uuid, text, jsonb) IS
    'Gets a prompt with its arguments (a JSON object of strings) and returns the GetPromptResult as jsonb (description, messages).';
COMMENT ON FUNCTION @extschema@.mcp_get_prompt(uuid, text, jsonb, jsonb, text) IS
    'Answers an input-required result of mcp_get_prompt: asks again with input_responses and the echoed requestState.';
COMMENT ON FUNCTION @extschema@.mcp_list_skills(uuid) IS
    'The skills of one of your servers (the skills extension, SEP-2640), all pages: name, description, uri of its SKILL.md, frontmatter, files (each with digest and size), and the whole entry. Reads no skill file.';
COMMENT ON FUNCTION @extschema@.mcp_read_skill(uuid, text) IS
    'Reads one file a skill lists and returns it only once its size and SHA-256 digest, and for a SKILL.md its front matter, match the server''s listing: {uri, skill, mime_type, size, digest, frontmatter?, text | blob}. A file not listed or not matching is MC005.';
COMMENT ON FUNCTION @extschema@.mcp_test_server(uuid) IS
    'Connects to a server and lists its tools: {ok, tool_count, tools} or {ok: false, error}; records last_error.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_url_problem(text) IS 'Internal: why a URL is not a valid MCP server URL, or NULL.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_headers_problem(jsonb, boolean) IS 'Internal: why a headers object is not valid, or NULL. Never shows a value.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_seal_headers(uuid, jsonb) IS 'Internal: seals header values for a row (called by the table''s trigger).';
COMMENT ON FUNCTION @extschema@.mcp_oauth_rotate_key() IS
    'Re-encrypts every secret under the current key (the first of mcp_oauth.encryption_key); older keys listed after it are accepted meanwhile. Superuser only. Returns the rows changed.';
COMMENT ON FUNCTION @extschema@.mcp_oauth_header_keys(jsonb) IS 'Internal: the sorted header names (the header_keys column).';
COMMENT ON FUNCTION @extschema@.mcp_oauth_slug(text) IS 'Internal: a slug derived from a display name.';
COMMENT ON FUNCTION @extschema@.user_mcp_servers_before_write() IS 'Internal trigger: validation, slug, reauth on endpoint change, timestamps.';
COMMENT ON FUNCTION @extschema@.user_mcp_servers_notify_reauth() IS 'Internal trigger: NOTIFY mcp_oauth_reauth with {"server_id","user_id"}.';

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

-- The durable call queue (README, "Queued calls"): calls enqueued by
-- mcp_call_tool_async, made after the enqueuing transaction commits by the
-- queue workers, kept mcp_oauth.call_retention after they finish. Logged:
-- a crash loses nothing.
CREATE SEQUENCE @extschema@.mcp_tool_calls_id_seq AS bigint;
CREATE TABLE @extschema@.mcp_tool_calls (
    id               bigint      NOT NULL DEFAULT pg_catalog.nextval('@extschema@.mcp_tool_calls_id_seq'),
    user_id          text        NOT NULL,
    server_id        uuid        NOT NULL,
    name             text        NOT NULL,
    arguments        jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'queued',
    result           jsonb,
    error_sqlstate   text,
    error_message    text,
    attempts         integer     NOT NULL DEFAULT 0,
    repeatable       boolean,
    task_id          text,
    cancel_requested boolean     NOT NULL DEFAULT false,
    worker           integer,
    run_after        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    CONSTRAINT mcp_tool_calls_pkey PRIMARY KEY (id),
    CONSTRAINT mcp_tool_calls_status_check CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    CONSTRAINT mcp_tool_calls_name_check CHECK (pg_catalog.length(name) BETWEEN 1 AND 256),
    CONSTRAINT mcp_tool_calls_arguments_check CHECK (pg_catalog.jsonb_typeof(arguments) = 'object'),
    CONSTRAINT mcp_tool_calls_finished_check CHECK ((status IN ('queued', 'running')) = (finished_at IS NULL))
);
ALTER SEQUENCE @extschema@.mcp_tool_calls_id_seq OWNED BY @extschema@.mcp_tool_calls.id;
COMMENT ON SEQUENCE @extschema@.mcp_tool_calls_id_seq IS 'The ids of queued calls (a plain sequence, so that pg_dump keeps it with the table).';
-- What the workers look for: queued calls due, by age; their own running
-- calls; finished calls past their retention.
CREATE INDEX mcp_tool_calls_queued_idx ON @extschema@.mcp_tool_calls (run_after, id) WHERE status = 'queued';
CREATE INDEX mcp_tool_calls_running_idx ON @extschema@.mcp_tool_calls (worker) WHERE status = 'running';
CREATE INDEX mcp_tool_calls_finished_idx ON @extschema@.mcp_tool_calls (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX mcp_tool_calls_user_idx ON @extschema@.mcp_tool_calls (user_id, id);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mcp_tool_calls', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.mcp_tool_calls_id_seq', '');

ALTER TABLE @extschema@.mcp_tool_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.mcp_tool_calls FORCE ROW LEVEL SECURITY;
CREATE POLICY mcp_tool_calls_select ON @extschema@.mcp_tool_calls FOR SELECT
    USING (user_id = (SELECT @extschema@.mcp_current_user_id()));

COMMENT ON TABLE @extschema@.mcp_tool_calls IS
    'Queued tool calls (mcp_call_tool_async): made after the enqueuing transaction commits, by the queue workers; each user sees only their own. Written only by the extension''s functions; finished calls are deleted after mcp_oauth.call_retention.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.id IS 'The call''s id, what mcp_call_result and mcp_cancel_call take.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.user_id IS 'Who enqueued it (mcp_current_user_id()); the call runs with that user''s server row.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.server_id IS 'The server row (user_mcp_servers.id) the call is made with.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.name IS 'The tool''s name on that server.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.arguments IS 'The tool''s arguments (a JSON object).';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.status IS 'queued, running, succeeded, failed or cancelled.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.result IS 'The CallToolResult of a call that succeeded (a tool that reports isError succeeded as a call).';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.error_sqlstate IS 'Why a call failed: the SQLSTATE mcp_call_tool would have raised (mcp_call_result raises it).';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.error_message IS 'Why a call failed: the message (and detail), never a secret.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.attempts IS 'Attempts made so far. A call is made again only when its request surely did not reach the server, or the tool is annotated idempotent or read-only.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.repeatable IS 'Whether the tool''s annotations say calling it again is harmless (idempotentHint or readOnlyHint); NULL until it mattered.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.task_id IS 'When the server runs the call as a task (the MCP tasks extension): its task id, polled until the task ends, and after a restart polled again instead of calling again.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.cancel_requested IS 'mcp_cancel_call asked to stop the running call.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.worker IS 'The queue worker (by number) running it.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.run_after IS 'Not made before this time (a retry''s backoff, a server''s Retry-After).';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.created_at IS 'When it was enqueued.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.started_at IS 'When its last attempt started.';
COMMENT ON COLUMN @extschema@.mcp_tool_calls.finished_at IS 'When it succeeded, failed or was cancelled.';

-- For dashboards: the caller's calls, with their server's slug and how long
-- they waited and ran. Read with the reader's rights (security_invoker), so
-- row-level security keeps it to their own calls.
CREATE VIEW @extschema@.mcp_calls WITH (security_invoker = true) AS
SELECT c.id, c.server_id, s.slug, c.name, c.status, c.attempts, c.error_sqlstate, c.error_message,
       c.created_at, c.started_at, c.finished_at,
       c.started_at - c.created_at AS waited, c.finished_at - c.started_at AS ran
  FROM @extschema@.mcp_tool_calls c
  LEFT JOIN @extschema@.user_mcp_servers s ON s.id = c.server_id;
COMMENT ON VIEW @extschema@.mcp_calls IS
    'Your queued tool calls, for dashboards: status, attempts, error, and how long each waited and ran.';
COMMENT ON COLUMN @extschema@.mcp_calls.id IS 'The call''s id.';
COMMENT ON COLUMN @extschema@.mcp_calls.server_id IS 'The server row it is made with.';
COMMENT ON COLUMN @extschema@.mcp_calls.slug IS 'That server''s slug (NULL when the row is gone).';
COMMENT ON COLUMN @extschema@.mcp_calls.name IS 'The tool''s name.';
COMMENT ON COLUMN @extschema@.mcp_calls.status IS 'queued, running, succeeded, failed or cancelled.';
COMMENT ON COLUMN @extschema@.mcp_calls.attempts IS 'Attempts made so far.';
COMMENT ON COLUMN @extschema@.mcp_calls.error_sqlstate IS 'The SQLSTATE of a failed call.';
COMMENT ON COLUMN @extschema@.mcp_calls.error_message IS 'The message of a failed call.';
COMMENT ON COLUMN @extschema@.mcp_calls.created_at IS 'When it was enqueued.';
COMMENT ON COLUMN @extschema@.mcp_calls.started_at IS 'When its last attempt started.';
COMMENT ON COLUMN @extschema@.mcp_calls.finished_at IS 'When it finished.';
COMMENT ON COLUMN @extschema@.mcp_calls.waited IS 'From enqueued to its last attempt''s start.';
COMMENT ON COLUMN @extschema@.mcp_calls.ran IS 'From its last attempt''s start to the end.';

COMMENT ON FUNCTION @extschema@.mcp_call_tool_async(uuid, text, jsonb) IS
    'Enqueues a tool call into mcp_tool_calls and returns its id; the queue workers make it after this transaction commits (a rollback enqueues nothing). Wait for it with mcp_call_result(id); LISTEN mcp_oauth_call_done to hear when it finishes.';
COMMENT ON FUNCTION @extschema@.mcp_call_user_tool_async(text, jsonb) IS
    'mcp_call_tool_async for a tool named by its qualified_name from mcp_user_tools (resolved now).';
COMMENT ON FUNCTION @extschema@.mcp_call_result(bigint, interval) IS
    'Waits up to timeout (interruptibly) for a queued call of yours: its CallToolResult; its error raised with the call''s SQLSTATE (57014 if cancelled); NULL if it is still queued or running.';
COMMENT ON FUNCTION @extschema@.mcp_cancel_call(bigint) IS
    'Cancels a queued or running call of yours (a running call''s request is dropped; the server may already have carried it out). False if it had finished.';

-- Privileges. Nothing of ours is executable by PUBLIC; mcp_oauth_user gets
-- exactly what an application role needs.
DO $$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT d.objid::regprocedure
          FROM pg_catalog.pg_depend d
         WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
           AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'mcp_oauth')
           AND d.classid = 'pg_catalog.pg_proc'::regclass
           AND d.deptype = 'e'
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    END LOOP;
END
$$;

REVOKE ALL ON TABLE @extschema@.user_mcp_servers FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.mcp_servers FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.mcp_oauth_stats FROM PUBLIC;
GRANT SELECT ON @extschema@.mcp_oauth_stats TO pg_monitor;
-- A view checks EXECUTE on the functions it calls as its reader.
GRANT EXECUTE ON FUNCTION @extschema@.mcp_oauth_server_stats() TO pg_monitor;
REVOKE ALL ON TABLE @extschema@.mcp_tool_calls FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.mcp_tool_calls_id_seq FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.mcp_calls FROM PUBLIC;

-- (Only where needed: in PostgreSQL 15 the public schema already grants
-- USAGE to PUBLIC, and a grant there would outlive DROP EXTENSION.)
DO $$
BEGIN
    IF NOT pg_catalog.has_schema_privilege('mcp_oauth_user', '@extschema@', 'USAGE') THEN
        GRANT USAGE ON SCHEMA @extschema@ TO mcp_oauth_user;
    END IF;
END
$$;
GRANT SELECT (id, user_id, slug, name, url, enabled, auth_type, oauth_metadata, oauth_authorized,
              header_keys, reauth_required, last_error, created_at, updated_at, generation, mcp_protocol)
    ON @extschema@.user_mcp_servers TO mcp_oauth_user;
GRANT INSERT (id, user_id, slug, name, url, headers, enabled, auth_type)
    ON @extschema@.user_mcp_servers TO mcp_oauth_user;
GRANT UPDATE (slug, name, url, headers, enabled, auth_type)
    ON @extschema@.user_mcp_servers TO mcp_oauth_user;
GRANT DELETE ON @extschema@.user_mcp_servers TO mcp_oauth_user;
GRANT SELECT ON @extschema@.mcp_servers TO mcp_oauth_user;
GRANT SELECT ON @extschema@.mcp_tool_calls TO mcp_oauth_user;
GRANT SELECT ON @extschema@.mcp_calls TO mcp_oauth_user;
GRANT EXECUTE ON FUNCTION
    @extschema@.mcp_current_user_id(),
    @extschema@.mcp_oauth_start(uuid),
    @extschema@.mcp_oauth_finish(text, text, text),
    @extschema@.mcp_oauth_callback(text),
    @extschema@.mcp_oauth_reset(uuid),
    @extschema@.mcp_oauth_set_client(uuid, text, text),
    @extschema@.mcp_oauth_set_client_key(uuid, text, text, text, text),
    @extschema@.mcp_oauth_enterprise_sign_in(uuid, text),
    @extschema@.mcp_oauth_callback_page(text, text),
    @extschema@.mcp_oauth_disconnect(uuid),
    @extschema@.mcp_user_tools(),
    @extschema@.mcp_call_user_tool(text, jsonb),
    @extschema@.mcp_call_tools(jsonb),
    @extschema@.mcp_call_tool_async(uuid, text, jsonb),
    @extschema@.mcp_call_user_tool_async(text, jsonb),
    @extschema@.mcp_call_result(bigint, interval),
    @extschema@.mcp_cancel_call(bigint),
    @extschema@.mcp_list_tools(uuid),
    @extschema@.mcp_call_tool(uuid, text, jsonb),
    @extschema@.mcp_call_tool(uuid, text, jsonb, jsonb, text),
    @extschema@.mcp_list_resources(uuid),
    @extschema@.mcp_list_resource_templates(uuid),
    @extschema@.mcp_read_resource(uuid, text),
    @extschema@.mcp_read_resource(uuid, text, jsonb, text),
    @extschema@.mcp_list_prompts(uuid),
    @extschema@.mcp_get_prompt(uuid, text, jsonb),
    @extschema@.mcp_get_prompt(uuid, text, jsonb, jsonb, text),
    @extschema@.mcp_test_server(uuid),
    @extschema@.mcp_list_skills(uuid),
    @extschema@.mcp_read_skill(uuid, text),
    @extschema@.mcp_oauth_url_problem(text),
    @extschema@.mcp_oauth_headers_problem(jsonb, boolean),
    @extschema@.mcp_oauth_seal_headers(uuid, jsonb),
    @extschema@.mcp_oauth_header_keys(jsonb),
    @extschema@.mcp_oauth_slug(text)
TO mcp_oauth_user;
