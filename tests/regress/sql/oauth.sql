-- The sign-in and MCP functions' argument and state errors, without any
-- network (servers that would be contacted are refused before that).
SET ROLE regress_alice;
SELECT id AS linear_id FROM mcp_servers WHERE slug = 'linear_prod' \gset
SELECT id AS github_id FROM mcp_servers WHERE slug = 'github' \gset

-- NULL arguments are errors (22004), never a silent NULL.
SELECT mcp_oauth_start(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_oauth_finish(NULL, 'code');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_call_tool(gen_random_uuid(), NULL);
\echo :LAST_ERROR_SQLSTATE

-- Unknown, foreign and headers-mode rows.
SELECT mcp_oauth_start('00000000-0000-0000-0000-000000000000');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_oauth_start(:'github_id');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_oauth_reset('00000000-0000-0000-0000-000000000000');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_oauth_set_client(:'github_id', 'client');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp_list_tools('00000000-0000-0000-0000-000000000000');
\echo :LAST_ERROR_SQLSTATE

-- Configuration comes first: no redirect URI, no state secret.
SELECT mcp_oauth_start(:'linear_id');
\echo :LAST_ERROR_SQLSTATE

SELECT mcp_oauth_finish('', 'code');
\echo :LAST_ERROR_SQLSTATE

-- States that are not ours (with a state secret, so that the state itself
-- is what is refused).
RESET ROLE;
SET mcp_oauth.state_secret = 'regress-state-secret-0123456789abcdef';
SET ROLE regress_alice;
SELECT mcp_oauth_finish('', 'code');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_oauth_finish(repeat('A', 1000000), 'code');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_oauth_finish('AQAAAABqsTuAAAAAAGqxPKxvHB1-D3pMPpsaL208S1ppBwcHBwcHBwcHBwcHBwcHB2FsaWNl.BBFg21d5yyVGE9GeHxdnk5TZq9ycB_0CaT-zWNF8FNE', 'code');
\echo :LAST_ERROR_SQLSTATE

-- Callback URLs: an error response is MC004 with the code, escaped.
SELECT mcp_oauth_callback('https://app.example/cb?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state=x');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_oauth_callback('https://app.example/cb?code=abc');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_oauth_callback('not a url');
\echo :LAST_ERROR_SQLSTATE

-- Pre-registered clients: checked, stored, not readable.
SELECT mcp_oauth_set_client(:'linear_id', '');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_oauth_set_client(:'linear_id', E'bad\nid');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_oauth_set_client(:'linear_id', 'my-client', 'my-secret');
SELECT oauth_metadata -> 'client' AS client FROM user_mcp_servers WHERE id = :'linear_id';
SELECT oauth_client_secret FROM user_mcp_servers WHERE id = :'linear_id';
\echo :LAST_ERROR_SQLSTATE

-- Calls on a row that is not signed in, or disabled.
SELECT mcp_call_tool(:'linear_id', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_call_tool(:'linear_id', 'x', '[]');
\echo :LAST_ERROR_SQLSTATE
UPDATE user_mcp_servers SET enabled = false WHERE id = :'linear_id';
SELECT mcp_call_tool(:'linear_id', 'x');
\echo :LAST_ERROR_SQLSTATE
UPDATE user_mcp_servers SET enabled = true WHERE id = :'linear_id';

-- Reset forgets the client.
SELECT mcp_oauth_reset(:'linear_id');
SELECT oauth_metadata, oauth_authorized, last_error FROM user_mcp_servers WHERE id = :'linear_id';
RESET ROLE;
