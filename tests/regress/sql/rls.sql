-- Owner-only access with two application roles. regress_alice (from the
-- table test) owns rows; regress_bob must not reach them by any route.
CREATE ROLE regress_bob LOGIN;
GRANT mcp_oauth_user TO regress_bob;
\set superuser :USER

-- Log in as bob (SET ROLE from a superuser session could switch to anyone).
\c - regress_bob
SELECT mcp_current_user_id();

-- Reading: the view, the table's public columns, COPY, a join, a count.
SELECT count(*) FROM mcp_servers;
SELECT count(*) FROM user_mcp_servers;
SELECT id FROM user_mcp_servers WHERE user_id = 'regress_alice';
COPY (SELECT id, url FROM user_mcp_servers) TO STDOUT;
COPY user_mcp_servers TO STDOUT;
\echo :LAST_ERROR_SQLSTATE
COPY user_mcp_servers (id, url) TO STDOUT;
SELECT count(*) FROM mcp_servers a JOIN mcp_servers b USING (id);

-- Secret columns are not readable, not even one's own.
SELECT headers FROM user_mcp_servers;
\echo :LAST_ERROR_SQLSTATE
SELECT oauth_tokens FROM user_mcp_servers;
\echo :LAST_ERROR_SQLSTATE
SELECT oauth_code_verifier FROM user_mcp_servers;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM user_mcp_servers;
\echo :LAST_ERROR_SQLSTATE

-- Writing: alice's rows are out of reach.
UPDATE user_mcp_servers SET name = 'pwned' WHERE user_id = 'regress_alice';
UPDATE user_mcp_servers SET url = 'https://evil.example/mcp';
DELETE FROM user_mcp_servers WHERE user_id = 'regress_alice';
DELETE FROM user_mcp_servers;

-- Writing another user's user_id.
INSERT INTO user_mcp_servers (user_id, name, url) VALUES ('regress_alice', 'planted', 'https://evil.example/mcp');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url) VALUES ('Mine', 'https://mine.example/mcp') RETURNING user_id, slug;
UPDATE user_mcp_servers SET user_id = 'regress_alice' WHERE slug = 'mine';
\echo :LAST_ERROR_SQLSTATE
-- ON CONFLICT cannot be used to probe or touch alice's slug either.
INSERT INTO user_mcp_servers (name, url, slug) VALUES ('x', 'https://x.example/mcp', 'github')
    ON CONFLICT (user_id, slug) DO UPDATE SET name = 'pwned' RETURNING user_id, slug, name;

-- Changing who one is: not allowed to an application role.
SET mcp_oauth.identity = 'setting:app.user_id';
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_alice;
\echo :LAST_ERROR_SQLSTATE

-- A function of bob's own, even SECURITY DEFINER, runs as bob.
CREATE FUNCTION pg_temp.steal() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT count(*) FROM user_mcp_servers $$;
SELECT pg_temp.steal();

-- Internal helper functions do not expose rows.
SELECT mcp_oauth_header_keys('{"A": "1"}');

\c - :superuser
-- Alice's rows are intact.
SET ROLE regress_alice;
SELECT slug, name, url FROM mcp_servers ORDER BY created_at, slug LIMIT 3;
SELECT count(*) FROM mcp_servers;
RESET ROLE;

-- A role without mcp_oauth_user gets nothing at all.
CREATE ROLE regress_stranger LOGIN;
SET ROLE regress_stranger;
SELECT count(*) FROM mcp_servers;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM user_mcp_servers;
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_current_user_id();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- A superuser sees every row (administration).
SELECT user_id, count(*) FROM user_mcp_servers GROUP BY 1 ORDER BY 1;
