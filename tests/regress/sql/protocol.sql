-- Resources, prompts, answers to input-required results and the declared
-- client capabilities: argument and state errors, without any network.
SET ROLE regress_alice;
SELECT id AS linear_id FROM mcp_servers WHERE slug = 'linear_prod' \gset

-- NULL arguments are errors (22004), never a silent NULL.
SELECT * FROM mcp_list_resources(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp_list_resource_templates(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_read_resource(:'linear_id', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp_list_prompts(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_get_prompt(:'linear_id', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_call_tool(:'linear_id', 'x', '{}', NULL, 'state');
\echo :LAST_ERROR_SQLSTATE

-- Malformed arguments are 22023, before any sign-in is looked at.
SELECT mcp_read_resource(:'linear_id', '');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_read_resource(:'linear_id', E'file:///a\nb');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_get_prompt(:'linear_id', 'greet', '{"who": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_get_prompt(:'linear_id', 'greet', '["Ada"]');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_call_tool(:'linear_id', 'x', '{}', '"yes"', 'state');
\echo :LAST_ERROR_SQLSTATE

-- An OAuth row that is not signed in: MC001, as for tools.
SELECT * FROM mcp_list_resources(:'linear_id');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mcp_list_prompts(:'linear_id');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_read_resource(:'linear_id', 'file:///notes.txt', '{"q": {"action": "accept"}}', 'state');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_get_prompt(:'linear_id', 'greet', '{"who": "Ada"}');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_call_tool(:'linear_id', 'x', '{}', '{"q": {"action": "decline"}}');
\echo :LAST_ERROR_SQLSTATE
-- Someone else's row, or none: not found.
SELECT mcp_get_prompt('00000000-0000-0000-0000-000000000000', 'greet');
\echo :LAST_ERROR_SQLSTATE

-- Client capabilities: none by default; checked when set, by any role.
SHOW mcp_oauth.client_capabilities;
SET mcp_oauth.client_capabilities = '{"elicitation": {"form": {}}, "roots": {}}';
SHOW mcp_oauth.client_capabilities;
SET mcp_oauth.client_capabilities = '{"elicitaton": {}}';
SET mcp_oauth.client_capabilities = 'elicitation';
SET mcp_oauth.client_capabilities = '[]';
RESET mcp_oauth.client_capabilities;
RESET ROLE;
