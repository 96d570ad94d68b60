-- Secrets at rest: sealed before they are stored, bound to their row and
-- column, rotated without downtime; without a key, refused.
SET ROLE regress_alice;
INSERT INTO user_mcp_servers (id, name, url, headers)
VALUES ('00000000-0000-4000-8000-000000000010', 'Sealed', 'https://sealed.example/mcp',
        '{"Authorization": "Bearer sk-regress-secret", "X-Team": "team-blue"}')
RETURNING slug, header_keys;
RESET ROLE;

-- Even a superuser sees only ciphertext, bound to the row and header name.
SELECT key, value LIKE 'enc1:%' AS sealed, value LIKE '%sk-regress%' AS plaintext_visible
  FROM user_mcp_servers, jsonb_each_text(headers)
 WHERE id = '00000000-0000-4000-8000-000000000010' ORDER BY key;

-- A sealed value moved to another header, or another row, is refused.
UPDATE user_mcp_servers
   SET headers = jsonb_build_object('X-Team', headers -> 'Authorization')
 WHERE id = '00000000-0000-4000-8000-000000000010';
\echo :LAST_ERROR_SQLSTATE
UPDATE user_mcp_servers
   SET headers = (SELECT headers FROM user_mcp_servers WHERE id = '00000000-0000-4000-8000-000000000010')
 WHERE id = '00000000-0000-4000-8000-000000000001';
\echo :LAST_ERROR_SQLSTATE
-- A rename keeps the sealed values as they are.
UPDATE user_mcp_servers SET name = 'Sealed (renamed)' WHERE id = '00000000-0000-4000-8000-000000000010';
SELECT count(*) AS still_sealed FROM user_mcp_servers, jsonb_each_text(headers)
 WHERE id = '00000000-0000-4000-8000-000000000010' AND value LIKE 'enc1:%';

-- Without a key, secrets are refused, unless the development setting allows plaintext.
SET mcp_oauth.encryption_key_file = '';
SET ROLE regress_alice;
INSERT INTO user_mcp_servers (name, url, headers) VALUES ('NoKey', 'https://nokey.example/mcp', '{"X-Key": "value-0001"}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO user_mcp_servers (name, url) VALUES ('NoSecrets', 'https://nosecrets.example/mcp') RETURNING slug;
RESET ROLE;
SET mcp_oauth.allow_plaintext_secrets = on;
SET ROLE regress_alice;
INSERT INTO user_mcp_servers (id, name, url, headers)
VALUES ('00000000-0000-4000-8000-000000000011', 'Plain', 'https://plain.example/mcp', '{"X-Key": "dev-only"}') RETURNING slug;
RESET ROLE;
SELECT headers ->> 'X-Key' AS stored_in_plaintext FROM user_mcp_servers WHERE id = '00000000-0000-4000-8000-000000000011';
RESET mcp_oauth.allow_plaintext_secrets;
RESET mcp_oauth.encryption_key_file;

-- A malformed key is a clear error that does not repeat it.
SET mcp_oauth.encryption_key = 'not-a-key-but-a-secret';
SELECT mcp_oauth_rotate_key();
\echo :LAST_ERROR_SQLSTATE
RESET mcp_oauth.encryption_key;

-- Rotation: the new key first, the old one after it; every secret is
-- re-sealed (the plaintext row too), then the old key can go.
SELECT set_config('mcp_oauth.encryption_key',
                  'ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100,'
                  || btrim(pg_read_file(current_setting('mcp_oauth.encryption_key_file')), E' \n'),
                  false) IS NOT NULL AS rotating;
SELECT mcp_oauth_rotate_key() AS rows_resealed;
SELECT mcp_oauth_rotate_key() AS rows_resealed_again;
SET mcp_oauth.encryption_key = 'ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100';
SELECT count(*) FILTER (WHERE mcp_oauth_seal_headers(id, headers) = headers) AS open_under_new_key,
       count(*) AS rows_with_headers
  FROM user_mcp_servers WHERE headers <> '{}';
SELECT headers ->> 'X-Key' LIKE 'enc1:%' AS plaintext_row_now_sealed
  FROM user_mcp_servers WHERE id = '00000000-0000-4000-8000-000000000011';
-- Under the old key alone, the new ciphertexts do not open.
RESET mcp_oauth.encryption_key;
SELECT mcp_oauth_seal_headers(id, headers) FROM user_mcp_servers WHERE id = '00000000-0000-4000-8000-000000000010';
\echo :LAST_ERROR_SQLSTATE

-- Only a superuser may rotate.
SET ROLE regress_alice;
SELECT mcp_oauth_rotate_key();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DELETE FROM user_mcp_servers WHERE id IN ('00000000-0000-4000-8000-000000000010', '00000000-0000-4000-8000-000000000011')
   OR name = 'NoSecrets';
