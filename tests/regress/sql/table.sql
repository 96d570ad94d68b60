-- The table's rules: every bad input is a clear error with a SQLSTATE and
-- changes nothing. Runs as an application role.
CREATE ROLE regress_alice LOGIN;
GRANT mcp_oauth_user TO regress_alice;
SET ROLE regress_alice;

-- (Fixed ids for the rows later tests use, so messages naming them are stable.)
INSERT INTO user_mcp_servers (id, name, url) VALUES ('00000000-0000-4000-8000-000000000001', 'GitHub', 'https://mcp.github.example/mcp')
RETURNING user_id, slug, name, url, enabled, auth_type, header_keys, oauth_authorized, reauth_required,
          created_at = updated_at AS fresh;

-- Slugs are derived from the name, unique per user.
INSERT INTO user_mcp_servers (name, url) VALUES ('GitHub', 'https://b.example/mcp') RETURNING slug;
INSERT INTO user_mcp_servers (name, url) VALUES ('  GitHub!! ', 'https://c.example/mcp') RETURNING slug;
INSERT INTO user_mcp_servers (name, url) VALUES ('A server name long enough to be cut', 'https://d.example/mcp') RETURNING slug;
INSERT INTO user_mcp_servers (name, url) VALUES ('日本語', 'https://e.example/mcp') RETURNING slug;
INSERT INTO user_mcp_servers (id, name, url, slug, auth_type, headers)
VALUES ('00000000-0000-4000-8000-000000000002', 'Linear', 'https://mcp.linear.example/sse', 'linear_prod', 'oauth', '{}') RETURNING slug, auth_type;
INSERT INTO user_mcp_servers (name, url, headers)
VALUES ('Keyed', 'http://127.0.0.1:9000/mcp', '{"X-Api-Key": "sk-secret-1", "Authorization": "Bearer sk-secret-2"}')
RETURNING slug, header_keys;

-- Names.
INSERT INTO user_mcp_servers (name, url) VALUES (NULL, 'https://x.example/mcp');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url) VALUES ('   ', 'https://x.example/mcp');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url) VALUES (repeat('n', 81), 'https://x.example/mcp');
\echo :LAST_ERROR_SQLSTATE

-- URLs.
INSERT INTO user_mcp_servers (name, url) VALUES ('x', NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url) VALUES ('x', 'mcp.example.com/mcp');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url) VALUES ('x', 'javascript:alert(1)');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url) VALUES ('x', 'file:///etc/passwd');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url) VALUES ('x', 'https://mcp.example.com/mcp#top');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url) VALUES ('x', 'https://user:pass@mcp.example.com/mcp');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url) VALUES ('x', ' https://mcp.example.com/mcp');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url) VALUES ('x', 'https://mcp.example.com/' || repeat('a', 2048));
\echo :LAST_ERROR_SQLSTATE

-- Headers: never echoing a value.
INSERT INTO user_mcp_servers (name, url, headers) VALUES ('x', 'https://x.example/mcp', NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url, headers) VALUES ('x', 'https://x.example/mcp', '["Authorization"]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url, headers) VALUES ('x', 'https://x.example/mcp', '{"X-Key": "sk-leak\r\nInjected: yes"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url, headers) VALUES ('x', 'https://x.example/mcp', '{"X-Key": 42}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url, headers) VALUES ('x', 'https://x.example/mcp', '{"Bad Name": "v"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url, headers) VALUES ('x', 'https://x.example/mcp', '{"Host": "internal"}');
\echo :LAST_ERROR_SQLSTATE
-- A value too short to keep out of what servers say back (whole, or after its scheme).
INSERT INTO user_mcp_servers (name, url, headers) VALUES ('x', 'https://x.example/mcp', '{"X-Api-Key": "k-12345"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url, headers) VALUES ('x', 'https://x.example/mcp', '{"Authorization": "Bearer k-1"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url, headers) VALUES ('x', 'https://x.example/mcp', '{"X-A": "value-01", "x-a": "value-02"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url, headers)
SELECT 'x', 'https://x.example/mcp', jsonb_object_agg('X-H' || i, 'v') FROM generate_series(1, 21) i;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url, headers) VALUES ('x', 'https://x.example/mcp', jsonb_build_object('X-Big', repeat('v', 4097)));
\echo :LAST_ERROR_SQLSTATE

-- auth_type and slug.
INSERT INTO user_mcp_servers (name, url, auth_type) VALUES ('x', 'https://x.example/mcp', 'basic');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url, slug) VALUES ('x', 'https://x.example/mcp', 'Bad Slug');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url, slug) VALUES ('x', 'https://x.example/mcp', repeat('s', 25));
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url, slug) VALUES ('x', 'https://x.example/mcp', 'github');
\echo :LAST_ERROR_SQLSTATE
-- Upsert by slug works (the unique key is (user_id, slug)).
INSERT INTO user_mcp_servers (name, url, slug) VALUES ('Keyed', 'http://127.0.0.1:9001/mcp', 'keyed')
    ON CONFLICT (user_id, slug) DO UPDATE SET url = EXCLUDED.url RETURNING slug, url;

-- Updates are checked the same way, and a failed statement changes nothing.
UPDATE user_mcp_servers SET url = 'gopher://x' WHERE slug = 'github';
\echo :LAST_ERROR_SQLSTATE
UPDATE user_mcp_servers SET headers = '{"X-A": "value-ok1"}', name = '' WHERE slug = 'github';
\echo :LAST_ERROR_SQLSTATE
SELECT slug, url, header_keys FROM mcp_servers WHERE slug = 'github';

-- Multi-row insert: one bad row, no rows.
INSERT INTO user_mcp_servers (name, url) VALUES ('ok-1', 'https://ok.example/1'), ('bad', 'nope');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM mcp_servers WHERE name = 'ok-1';

-- Columns the application may not write.
INSERT INTO user_mcp_servers (name, url, oauth_tokens) VALUES ('x', 'https://x.example/mcp', '\x00');
\echo :LAST_ERROR_SQLSTATE
UPDATE user_mcp_servers SET reauth_required = false;
\echo :LAST_ERROR_SQLSTATE
UPDATE user_mcp_servers SET created_at = now();
\echo :LAST_ERROR_SQLSTATE
UPDATE user_mcp_servers SET oauth_authorized = true;
\echo :LAST_ERROR_SQLSTATE

-- The listing.
SELECT slug, name, url, auth_type, oauth_authorized, header_keys, reauth_required, last_error
  FROM mcp_servers ORDER BY created_at, slug;

RESET ROLE;
-- As a superuser, the failing-row DETAIL of a constraint would print secret
-- columns; the trigger's own errors come first and never do.
INSERT INTO user_mcp_servers (user_id, name, url, headers) VALUES ('someone', 'x', 'nope', '{"X-Key": "sk-superuser-secret"}');
\echo :LAST_ERROR_SQLSTATE
