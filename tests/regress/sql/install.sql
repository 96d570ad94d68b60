-- CREATE EXTENSION in a fresh database, what it makes, and DROP EXTENSION.
CREATE EXTENSION mcp_oauth;

-- Every object of the extension.
SELECT pg_describe_object(classid, objid, objsubid) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mcp_oauth')
   AND deptype = 'e'
 ORDER BY 1;

-- The application role exists and cannot log in.
SELECT rolname, rolcanlogin, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'mcp_oauth_user';

-- Row-level security is enabled and forced.
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = 'user_mcp_servers';
SELECT policyname, cmd, qual IS NOT NULL AS has_using, with_check IS NOT NULL AS has_with_check
  FROM pg_policies WHERE tablename = 'user_mcp_servers' ORDER BY policyname;

-- Nothing is granted to PUBLIC: no function of ours is executable by it, and
-- the table and view are not readable by it. The SQL functions pin their
-- search_path; the Rust ones override it around their own statements
-- (tested in tests/integration/oauth.sh with a shadowing operator).
SELECT p.oid::regprocedure AS function,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
       has_function_privilege('mcp_oauth_user', p.oid, 'EXECUTE') AS app_execute,
       p.prosecdef AS security_definer,
       p.proconfig AS settings
  FROM pg_proc p
  JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mcp_oauth')
 ORDER BY p.oid::regprocedure::text;
SELECT c.relname, a.acl
  FROM pg_class c, LATERAL (SELECT array_agg(x::text ORDER BY x::text) AS acl FROM unnest(c.relacl) x) a
 WHERE c.relname IN ('user_mcp_servers', 'mcp_servers')
 ORDER BY 1;

-- Column privileges of the application role: secrets are neither readable
-- nor writable; header values are writable but not readable.
SELECT attname,
       has_column_privilege('mcp_oauth_user', 'user_mcp_servers', attname, 'SELECT') AS sel,
       has_column_privilege('mcp_oauth_user', 'user_mcp_servers', attname, 'INSERT') AS ins,
       has_column_privilege('mcp_oauth_user', 'user_mcp_servers', attname, 'UPDATE') AS upd
  FROM pg_attribute
 WHERE attrelid = 'user_mcp_servers'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;

-- Every public function explains itself in \df+.
SELECT p.oid::regprocedure AS function, obj_description(p.oid, 'pg_proc') IS NOT NULL AS has_comment
  FROM pg_proc p
  JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mcp_oauth')
 ORDER BY p.oid::regprocedure::text;

-- The table's rows are dumped by pg_dump.
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'mcp_oauth';

-- DROP EXTENSION removes everything it made; the cluster-wide role is left
-- holding nothing, so it can be dropped.
DROP EXTENSION mcp_oauth;
SELECT count(*) AS leftovers FROM pg_class WHERE relname IN ('user_mcp_servers', 'mcp_servers');
SELECT count(*) AS leftovers FROM pg_proc WHERE proname LIKE 'mcp\_%' OR proname LIKE 'user\_mcp\_%';
DROP ROLE mcp_oauth_user;

-- Installing again (also into a database where the role already exists).
CREATE EXTENSION mcp_oauth;
SELECT count(*) FROM pg_roles WHERE rolname = 'mcp_oauth_user';
