-- The three identity modes. In 'setting' and 'jwt_claim' modes one database
-- role serves many application users; a missing identity is an error, never
-- every row.
CREATE ROLE regress_app LOGIN;
GRANT mcp_oauth_user TO regress_app;

-- Only a superuser chooses the mode.
SET ROLE regress_app;
SET mcp_oauth.identity = 'role';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- setting:<name>: the trusted backend sets the user per transaction.
SET mcp_oauth.identity = 'setting:app.user_id';
SET ROLE regress_app;
SELECT count(*) FROM mcp_servers;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url) VALUES ('x', 'https://x.example/mcp');
\echo :LAST_ERROR_SQLSTATE

BEGIN;
SET LOCAL app.user_id = 'user-1';
SELECT mcp_current_user_id();
INSERT INTO user_mcp_servers (name, url) VALUES ('Notion', 'https://mcp.notion.example/mcp') RETURNING user_id, slug;
SELECT user_id, slug FROM mcp_servers;
COMMIT;

-- Another user sees, changes and deletes nothing of user-1 (RETURNING shows
-- any row touched; the changes are committed, so a breach would also show
-- below).
BEGIN;
SET LOCAL app.user_id = 'user-2';
SELECT count(*) FROM mcp_servers;
UPDATE user_mcp_servers SET name = 'pwned' RETURNING id;
DELETE FROM user_mcp_servers RETURNING id;
COMMIT;
BEGIN;
SET LOCAL app.user_id = 'user-2';
INSERT INTO user_mcp_servers (user_id, name, url) VALUES ('user-1', 'planted', 'https://x.example/mcp');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SET LOCAL app.user_id = 'user-1';
SELECT user_id, name FROM mcp_servers;
COMMIT;

-- Outside the transaction the setting is gone again.
SELECT count(*) FROM mcp_servers;
\echo :LAST_ERROR_SQLSTATE

-- Control characters and oversized ids are refused.
BEGIN;
SET LOCAL app.user_id = E'user-1\n';
SELECT count(*) FROM mcp_servers;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT set_config('app.user_id', repeat('u', 257), true) IS NOT NULL AS set;
SELECT count(*) FROM mcp_servers;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET ROLE;

-- jwt_claim:<claim>: PostgREST / Supabase put the verified claims in request.jwt.claims.
SET mcp_oauth.identity = 'jwt_claim:sub';
SET ROLE regress_app;
SELECT count(*) FROM mcp_servers;
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "user-1", "role": "authenticated"}', true) IS NOT NULL AS set;
SELECT user_id, slug FROM mcp_servers;
COMMIT;
BEGIN;
SELECT set_config('request.jwt.claims', '{"role": "anon"}', true) IS NOT NULL AS set;
SELECT count(*) FROM mcp_servers;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": {"id": 1}}', true) IS NOT NULL AS set;
SELECT count(*) FROM mcp_servers;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET ROLE;

-- Bad modes are refused when set, with the accepted forms in DETAIL.
SET mcp_oauth.identity = 'jwt';
\echo :LAST_ERROR_SQLSTATE
SET mcp_oauth.identity = 'setting:mcp_oauth.state_secret';
\echo :LAST_ERROR_SQLSTATE

-- A database-level setting by a superuser applies to new sessions.
RESET mcp_oauth.identity;
SELECT current_database() AS db \gset
\set superuser :USER
ALTER DATABASE :"db" SET mcp_oauth.identity = 'setting:app.user_id';
\c - regress_app
SHOW mcp_oauth.identity;
SELECT count(*) FROM mcp_servers;
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SET LOCAL app.user_id = 'user-1';
SELECT user_id, slug FROM mcp_servers;
COMMIT;
\c - :superuser
ALTER DATABASE :"db" RESET mcp_oauth.identity;
