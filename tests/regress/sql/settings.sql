-- Settings: secrets are superuser-only and invisible to others; the prefix is
-- reserved; timeouts can be lowered, not raised, by others.
SET mcp_oauth.state_secret = '0123456789abcdef0123456789abcdef-regress';
SET mcp_oauth.encryption_key = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';

SELECT name, setting, unit, context, vartype
  FROM pg_settings WHERE name LIKE 'mcp\_oauth.%'
   AND name NOT IN ('mcp_oauth.state_secret', 'mcp_oauth.encryption_key', 'mcp_oauth.encryption_key_file')
 ORDER BY name;

-- Mistakes are reported by SET. (Secrets are checked where they are used,
-- so that no error message or logged statement repeats them.)
SET mcp_oauth.state_secret = 'too-short-secret';
SET mcp_oauth.redirect_uri = 'app.example/callback';
\echo :LAST_ERROR_SQLSTATE
SET mcp_oauth.redirect_uri = 'https://app.example/callback';
SET mcp_oauth.client_metadata_url = 'http://app.example/client.json';
\echo :LAST_ERROR_SQLSTATE
SET mcp_oauth.allowed_hosts = 'mcp.example.com, http://x';
\echo :LAST_ERROR_SQLSTATE
SET mcp_oauth.allowed_hosts = 'mcp.example.com, api.example.com:8443, [::1]:9000';
SET mcp_oauth.state_ttl = '10min';
SHOW mcp_oauth.state_ttl;
SET mcp_oauth.state_ttl = 5;
\echo :LAST_ERROR_SQLSTATE
SET mcp_oauth.max_response_bytes = '2MB';
SHOW mcp_oauth.max_response_bytes;
SET mcp_oauth.no_such_setting = 'x';
\echo :LAST_ERROR_SQLSTATE

-- Other roles: cannot read or set the secrets, or anything that changes
-- where requests go or how they are trusted.
SET ROLE regress_alice;
SHOW mcp_oauth.state_secret;
\echo :LAST_ERROR_SQLSTATE
SELECT current_setting('mcp_oauth.encryption_key');
\echo :LAST_ERROR_SQLSTATE
SELECT name FROM pg_settings WHERE name LIKE 'mcp\_oauth.%' ORDER BY name;
SELECT count(*) FROM pg_settings WHERE setting LIKE '%0123456789abcdef%';
SET mcp_oauth.state_secret = 'x';
\echo :LAST_ERROR_SQLSTATE
SET mcp_oauth.allowed_hosts = '';
\echo :LAST_ERROR_SQLSTATE
SET mcp_oauth.allow_private_networks = on;
\echo :LAST_ERROR_SQLSTATE
SET mcp_oauth.allow_http_loopback = on;
\echo :LAST_ERROR_SQLSTATE
SET mcp_oauth.redirect_uri = 'https://evil.example/cb';
\echo :LAST_ERROR_SQLSTATE
SET mcp_oauth.max_response_bytes = '1GB';
\echo :LAST_ERROR_SQLSTATE

-- Timeouts: lower is fine, higher than the session's limit is not.
SET mcp_oauth.request_timeout = '10s';
SHOW mcp_oauth.request_timeout;
SET mcp_oauth.request_timeout = '30s';
SHOW mcp_oauth.request_timeout;
SET mcp_oauth.request_timeout = '2min';
\echo :LAST_ERROR_SQLSTATE
SET mcp_oauth.connect_timeout = '1s';
SET mcp_oauth.connect_timeout = '6s';
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE regress_alice SET mcp_oauth.request_timeout = '10min';
\echo :LAST_ERROR_SQLSTATE
RESET mcp_oauth.request_timeout;
RESET mcp_oauth.connect_timeout;
RESET ROLE;

-- A superuser raises the limit, for a session or a database.
SET mcp_oauth.request_timeout = '2min';
SHOW mcp_oauth.request_timeout;
RESET mcp_oauth.request_timeout;
SELECT current_database() AS db \gset
\set superuser :USER
ALTER DATABASE :"db" SET mcp_oauth.state_secret = 'database-level-secret-of-at-least-32-bytes';
ALTER DATABASE :"db" SET mcp_oauth.request_timeout = '2min';
\c - regress_alice
SHOW mcp_oauth.request_timeout;
SET mcp_oauth.request_timeout = '90s';
SET mcp_oauth.request_timeout = '3min';
\echo :LAST_ERROR_SQLSTATE
SHOW mcp_oauth.state_secret;
\echo :LAST_ERROR_SQLSTATE
\c - :superuser
SELECT current_setting('mcp_oauth.state_secret') = 'database-level-secret-of-at-least-32-bytes' AS database_secret_applies;
ALTER DATABASE :"db" RESET mcp_oauth.state_secret;
ALTER DATABASE :"db" RESET mcp_oauth.request_timeout;
