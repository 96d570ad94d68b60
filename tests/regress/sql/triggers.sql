-- Triggers: updated_at, reauth on a change of endpoint or auth type, and
-- mcp_mark_reauth_required on an application's own table.
SET ROLE regress_alice;
SELECT id AS linear_id FROM mcp_servers WHERE slug = 'linear_prod' \gset
SELECT id AS github_id FROM mcp_servers WHERE slug = 'github' \gset
RESET ROLE;

-- Simulate a finished sign-in (as the extension will, with superuser rights).
UPDATE user_mcp_servers
   SET oauth_tokens = '\x01', oauth_code_verifier = 'v', oauth_client_secret = 's',
       oauth_metadata = '{"issuer": "https://as.example"}'
 WHERE id = :'linear_id';

SET ROLE regress_alice;
SELECT oauth_authorized, reauth_required FROM mcp_servers WHERE id = :'linear_id';

-- updated_at moves, created_at stays.
SELECT created_at AS before_created, updated_at AS before_updated FROM mcp_servers WHERE id = :'linear_id' \gset
SELECT pg_sleep(0.01);
UPDATE user_mcp_servers SET name = 'Linear (prod)' WHERE id = :'linear_id';
SELECT created_at = :'before_created' AS created_kept, updated_at > :'before_updated' AS updated_moved
  FROM mcp_servers WHERE id = :'linear_id';

-- A rename keeps the sign-in; a new URL forgets it and asks for a new one.
SELECT oauth_authorized, reauth_required FROM mcp_servers WHERE id = :'linear_id';
UPDATE user_mcp_servers SET url = 'https://mcp2.linear.example/mcp' WHERE id = :'linear_id';
SELECT oauth_authorized, reauth_required FROM mcp_servers WHERE id = :'linear_id';
RESET ROLE;
SELECT oauth_tokens IS NULL AS tokens_cleared, oauth_code_verifier IS NULL AS verifier_cleared,
       oauth_client_secret IS NULL AS secret_cleared, oauth_metadata IS NULL AS registration_cleared
  FROM user_mcp_servers WHERE id = :'linear_id';

-- Switching a headers row to OAuth requires a sign-in; back to headers does not.
SET ROLE regress_alice;
UPDATE user_mcp_servers SET auth_type = 'oauth' WHERE id = :'github_id';
SELECT auth_type, reauth_required FROM mcp_servers WHERE id = :'github_id';
UPDATE user_mcp_servers SET auth_type = 'headers' WHERE id = :'github_id';
SELECT auth_type, reauth_required FROM mcp_servers WHERE id = :'github_id';
RESET ROLE;

-- An application table whose changes revoke its users' sign-ins.
CREATE TABLE regress_app_users (id text PRIMARY KEY, password_hash text, active boolean DEFAULT true);
INSERT INTO regress_app_users VALUES ('regress_alice', 'h1'), ('regress_bob', 'h2');
CREATE TRIGGER app_users_revoke_mcp
    AFTER UPDATE OF password_hash OR DELETE ON regress_app_users
    FOR EACH ROW EXECUTE FUNCTION mcp_mark_reauth_required('id');
CREATE TRIGGER app_users_deactivate_mcp
    AFTER UPDATE OF active ON regress_app_users
    FOR EACH ROW WHEN (OLD.active AND NOT NEW.active) EXECUTE FUNCTION mcp_mark_reauth_required('id');
GRANT SELECT, UPDATE, DELETE ON regress_app_users TO regress_bob;

-- Back to a signed-in state.
UPDATE user_mcp_servers SET oauth_tokens = '\x01', reauth_required = false WHERE id = :'linear_id';
SELECT slug, oauth_authorized, reauth_required, last_error FROM user_mcp_servers WHERE id = :'linear_id';

-- Bob, under row-level security, changes alice's password: alice's OAuth
-- rows (which bob cannot see) are marked; her headers rows are not.
SET ROLE regress_bob;
UPDATE regress_app_users SET password_hash = 'h1-new' WHERE id = 'regress_alice';
RESET ROLE;
SELECT slug, auth_type, oauth_authorized, reauth_required, last_error
  FROM user_mcp_servers WHERE user_id = 'regress_alice' ORDER BY created_at, slug;

-- Deactivation through the WHEN clause, and deletion.
UPDATE user_mcp_servers SET reauth_required = false WHERE id = :'linear_id';
UPDATE regress_app_users SET active = true WHERE id = 'regress_alice';
SELECT reauth_required FROM user_mcp_servers WHERE id = :'linear_id';
UPDATE regress_app_users SET active = false WHERE id = 'regress_alice';
SELECT reauth_required FROM user_mcp_servers WHERE id = :'linear_id';
UPDATE user_mcp_servers SET reauth_required = false WHERE id = :'linear_id';
DELETE FROM regress_app_users WHERE id = 'regress_alice';
SELECT reauth_required FROM user_mcp_servers WHERE id = :'linear_id';

-- Misuse is reported clearly.
CREATE TABLE regress_other (uid text);
CREATE TRIGGER other_revoke AFTER INSERT ON regress_other
    FOR EACH ROW EXECUTE FUNCTION mcp_mark_reauth_required();
INSERT INTO regress_other VALUES ('regress_alice');
\echo :LAST_ERROR_SQLSTATE
CREATE TRIGGER other_revoke_stmt AFTER INSERT ON regress_other
    FOR EACH STATEMENT EXECUTE FUNCTION mcp_mark_reauth_required('uid');
DROP TRIGGER other_revoke ON regress_other;
INSERT INTO regress_other VALUES ('regress_alice');
\echo :LAST_ERROR_SQLSTATE

-- Attaching it needs EXECUTE, which no one has until an administrator grants it.
CREATE ROLE regress_app_owner;
CREATE TABLE regress_owned (user_id text);
ALTER TABLE regress_owned OWNER TO regress_app_owner;
SET ROLE regress_app_owner;
CREATE TRIGGER owned_revoke AFTER INSERT ON regress_owned
    FOR EACH ROW EXECUTE FUNCTION mcp_mark_reauth_required();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT EXECUTE ON FUNCTION mcp_mark_reauth_required() TO regress_app_owner;
UPDATE user_mcp_servers SET reauth_required = false WHERE id = :'linear_id';
SET ROLE regress_app_owner;
CREATE TRIGGER owned_revoke AFTER INSERT ON regress_owned
    FOR EACH ROW EXECUTE FUNCTION mcp_mark_reauth_required();
INSERT INTO regress_owned VALUES ('regress_alice');
RESET ROLE;
SELECT reauth_required FROM user_mcp_servers WHERE id = :'linear_id';

DROP TABLE regress_app_users, regress_other, regress_owned;
REVOKE EXECUTE ON FUNCTION mcp_mark_reauth_required() FROM regress_app_owner;
DROP ROLE regress_app_owner;
