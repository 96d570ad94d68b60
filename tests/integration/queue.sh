#!/usr/bin/env bash
# The durable call queue (README, "Queued calls"): mcp_call_tool_async from a
# trigger, made only after commit; results, errors, cancels and NOTIFY; the
# rules for making a call again; a crash and a killed worker mid-call;
# per-server caps; retention; row-level security.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"

fixture_cluster
signin_ready
app_roles bob
behave '{"api_key": "key-0001"}'
keyed=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, headers) VALUES ('Keyed', 'keyed', '$base/mcp', '{\"X-Api-Key\": \"key-0001\"}') RETURNING id")
oauth=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Fixture', 'fixture', '$base/mcp', 'oauth') RETURNING id")
sign_in "$oauth"
pending=$(as_alice -c "INSERT INTO user_mcp_servers (name, slug, url, auth_type) VALUES ('Pending', 'pending', '$base/mcp', 'oauth') RETURNING id")

enqueue() { as_alice -c "SELECT mcp_call_tool_async('$1', '${2:-echo}', '${3:-{\}}')"; }
status() { as_alice -c "SELECT status FROM mcp_tool_calls WHERE id = $1"; }
# wait_status ID PATTERN: waits (at most 15 s) until call ID's status matches.
wait_status() {
  local s
  for _ in $(seq 150); do
    s=$(status "$1")
    [[ $s =~ $2 ]] && break
    sleep 0.1
  done
  echo "$s"
}

# A trigger on the application's own table enqueues; a rollback enqueues nothing.
psql_q >/dev/null <<SQL
CREATE TABLE public.orders (id serial PRIMARY KEY, note text NOT NULL);
GRANT SELECT, INSERT ON public.orders TO alice;
GRANT USAGE ON SEQUENCE public.orders_id_seq TO alice;
CREATE FUNCTION public.orders_notify_tool() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM mcp_call_tool_async('$keyed', 'echo', jsonb_build_object('text', NEW.note));
    RETURN NEW;
END
\$\$;
CREATE TRIGGER orders_notify_tool AFTER INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION public.orders_notify_tool();
SQL
calls=$(stat tool_calls)
as_alice -c "BEGIN" -c "INSERT INTO orders (note) VALUES ('rolled back')" -c "ROLLBACK" >/dev/null
sleep 1
check "a trigger's enqueue in a rolled-back transaction: no call row" "^0$" "$(as_alice -c "SELECT count(*) FROM mcp_tool_calls")"
check "... and nothing reached the server" "^0$" "$(delta "$calls" "$(stat tool_calls)")"

# Made only after the enqueuing transaction commits.
out=$(as_alice -c "BEGIN" -c "INSERT INTO orders (note) VALUES ('committed')" -c "SELECT pg_sleep(1.5)" \
  -c "\\! curl -sf --max-time 5 $base/_fixture/stats | jq -r '\"during=\\(.tool_calls)\"'" -c "COMMIT" 2>&1)
check "while the enqueuing transaction is open, the call is not made" "^during=$calls$" "$(grep '^during=' <<<"$out")"
id=$(as_alice -c "SELECT id FROM mcp_tool_calls ORDER BY id DESC LIMIT 1")
check "after the commit it is, and mcp_call_result returns its result" '"text": "committed"' "$(as_alice -c "SELECT mcp_call_result($id)")"
check "... once" "^1$" "$(delta "$calls" "$(stat tool_calls)")"
check "... recorded as succeeded, with its timings" "^succeeded\|1\|t\|t$" \
  "$(as_alice -c "SELECT status, attempts, started_at >= created_at, finished_at >= started_at FROM mcp_tool_calls WHERE id = $id")"
check "mcp_calls shows it with its server's slug" "^keyed\|echo\|succeeded$" "$(as_alice -c "SELECT slug, name, status FROM mcp_calls WHERE id = $id")"

expect_error "waiting for a call enqueued by the same transaction" 55000 "only after this transaction commits" -- -U alice \
  -c "BEGIN" -c "SELECT mcp_call_result(mcp_call_tool_async('$keyed', 'echo', '{\"text\": \"x\"}'))"

# NOTIFY with the id only.
out=$(as_alice -c "LISTEN mcp_oauth_call_done" -c "SELECT mcp_call_tool_async('$keyed', 'echo', '{\"text\": \"notified\"}')" -c "SELECT pg_sleep(1)" -c "SELECT 1" 2>&1)
id=$(sed -n 1p <<<"$out")
check "NOTIFY mcp_oauth_call_done carries the call's id, and nothing else" "notification \"mcp_oauth_call_done\" with payload \"$id\"" "$out"

# The call's error, with the SQLSTATE mcp_call_tool would have raised.
id=$(enqueue "$pending" echo '{"text": "x"}')
expect_error "a call on a row that needs a sign-in fails with MC001" MC001 "queued call $id failed" -- -U alice -c "SELECT mcp_call_result($id)"
check "... and stays visible, failed, with why" "^failed\|MC001\|1$" "$(as_alice -c "SELECT status, error_sqlstate, attempts FROM mcp_tool_calls WHERE id = $id")"
id=$(enqueue "$keyed" nosuchtool)
expect_error "a tool the server does not know: MC005" MC005 "queued call $id failed" -- -U alice -c "SELECT mcp_call_result($id)"
expect_error "an unknown call" 42704 "not found" -- -U alice -c "SELECT mcp_call_result(999999)"
expect_error "args that are not an object" 22023 "JSON object" -- -U alice -c "SELECT mcp_call_tool_async('$keyed', 'echo', '[1]')"
expect_error "another user's server" 42704 "not found" -- -U bob -c "SELECT mcp_call_tool_async('$keyed', 'echo')"
id=$(as_alice -c "SELECT mcp_call_user_tool_async('keyed__echo', '{\"text\": \"qualified\"}')")
check "by qualified name" '"text": "qualified"' "$(as_alice -c "SELECT mcp_call_result($id)")"

# Row-level security: another user sees, waits for and cancels none of them.
check "another user sees none of alice's calls" "^0\|0$" "$(psql_q -U bob -At -c "SELECT (SELECT count(*) FROM mcp_tool_calls) || '|' || (SELECT count(*) FROM mcp_calls)")"
expect_error "another user's call cannot be waited for" 42704 "not found" -- -U bob -c "SELECT mcp_call_result($id)"
expect_error "... nor cancelled" 42704 "not found" -- -U bob -c "SELECT mcp_cancel_call($id)"
expect_error "nobody writes the queue directly" 42501 "permission denied" -- -U alice -c "UPDATE mcp_tool_calls SET status = 'queued'"

# Cancel: a queued call never runs; a running call is stopped.
calls=$(stat tool_calls)
id=$(as_alice <<SQL | tail -1
BEGIN;
SELECT mcp_call_tool_async('$keyed', 'echo', '{"text": "never"}') AS qid \gset
SELECT mcp_cancel_call(:qid) \g /dev/null
COMMIT;
SELECT :qid;
SQL
)
check "a call cancelled while queued ends cancelled" "^cancelled$" "$(status "$id")"
expect_error "... and mcp_call_result says so" 57014 "was cancelled" -- -U alice -c "SELECT mcp_call_result($id)"
behave '{"api_key": "key-0001", "hang": true}'
id=$(enqueue "$keyed" echo '{"text": "hangs"}')
check "a call whose server does not answer is running" "^running$" "$(wait_status "$id" '^running$')"
check "mcp_call_result returns NULL when it has not finished within the timeout" "^null$" \
  "$(as_alice -c "SELECT coalesce(mcp_call_result($id, '200ms')::text, 'null')")"
check "mcp_cancel_call stops a running call" "^t$" "$(as_alice -c "SELECT mcp_cancel_call($id)")"
check "... which ends cancelled" "^cancelled$" "$(wait_status "$id" '^cancelled$')"
check "cancelling a finished call changes nothing" "^f\|cancelled$" "$(as_alice -c "SELECT mcp_cancel_call($id)" -c "SELECT status FROM mcp_tool_calls WHERE id = $id" | paste -sd '|')"
behave '{"api_key": "key-0001"}'
check "... no echo of a never-run call reached the server" "^0$" "$(delta "$calls" "$(stat tool_calls)")"

# Made again only when it surely did not reach the server...
calls=$(stat tool_calls)
behave '{"api_key": "key-0001", "throttle": 3, "throttle_status": 429, "retry_after": "1"}'
id=$(enqueue "$keyed" echo '{"text": "after 429s"}')
check "429 with Retry-After: made again until it is taken" '"text": "after 429s"' "$(as_alice -c "SELECT mcp_call_result($id, '20s')")"
check "... after 4 attempts (one per 429), carried out once" "^4\|1$" "$(as_alice -c "SELECT attempts FROM mcp_tool_calls WHERE id = $id")|$(delta "$calls" "$(stat tool_calls)")"
# (The upper bound leaves room for a loaded machine, where one run took over
# 6 s; it still catches a wait far beyond what was asked.)
check "... waiting as asked (Retry-After: 1, three times), and not far longer" "^t\|t$" \
  "$(as_alice -c "SELECT finished_at - created_at >= interval '2.9 s', finished_at - created_at < interval '10 s' FROM mcp_tool_calls WHERE id = $id")"
# A storm of 429s: every call waits its turn and is carried out once.
behave '{"api_key": "key-0001", "throttle": 15, "throttle_status": 429, "retry_after": "1"}'
before=$(as_alice -c "SELECT max(id) FROM mcp_tool_calls")
as_alice -c "SELECT mcp_call_tool_async('$keyed', 'echo', jsonb_build_object('text', 'storm' || i)) FROM generate_series(1, 10) i" >/dev/null
check "a 429 storm: all ten calls succeed" "^10$" \
  "$(as_alice -c "SELECT count(*) FROM mcp_tool_calls WHERE id > $before AND mcp_call_result(id, '30s') IS NOT NULL")"
check "... each carried out once" "^10 10$" \
  "$(curl -sf "$base/_fixture/stats" | jq -r '[.echoed[] | select(startswith("storm"))] | "\(length) \(unique | length)"')"
behave '{"api_key": "key-0001", "throttle": 2, "throttle_status": 503}'
id=$(enqueue "$keyed" echo '{"text": "after 503s"}')
check "503: made again with backoff" '"text": "after 503s"' "$(as_alice -c "SELECT mcp_call_result($id, '20s')")"
# ...or when the tool says repeating it is harmless; never otherwise.
behave '{"api_key": "key-0001", "mcp_failures": 1}'
id=$(enqueue "$keyed" echo '{"text": "500"}')
expect_error "a 500 on a tool that is not idempotent: failed, not made again" MC005 "HTTP 500" -- -U alice -c "SELECT mcp_call_result($id)"
check "... after one attempt, marked not repeatable" "^1\|f$" "$(as_alice -c "SELECT attempts, repeatable FROM mcp_tool_calls WHERE id = $id")"
behave '{"api_key": "key-0001", "mcp_failures": 1}'
id=$(enqueue "$keyed" add '{"a": 1, "b": 2}')
check "a 500 on a read-only tool: made again, and succeeds" "^3(\.0)?$" "$(as_alice -c "SELECT mcp_call_result($id)->'structuredContent'->>'sum'")"
check "... on its second attempt, marked repeatable" "^2\|t$" "$(as_alice -c "SELECT attempts, repeatable FROM mcp_tool_calls WHERE id = $id")"
behave '{"api_key": "key-0001"}'

# Queued calls on a row whose token expired: one refresh for all of them.
behave '{"api_key": "key-0001", "expires_in": 1}'
sign_in "$oauth"
behave '{"api_key": "key-0001", "mcp_delay_ms": 100}'
sleep 1.5
refreshes=$(stat refreshes) reuse=$(stat refresh_reuse)
ids=$(as_alice -c "SELECT string_agg(mcp_call_tool_async('$oauth', 'echo', jsonb_build_object('text', 'r' || i))::text, ',') FROM generate_series(1, 8) i")
check "eight queued calls on an expired token all succeed" "^8$" "$(as_alice -c "SELECT count(*) FROM unnest('{$ids}'::bigint[]) i WHERE mcp_call_result(i, '20s') IS NOT NULL")"
check "... with one refresh, no refresh token reused" "^1 0$" "$(delta "$refreshes" "$(stat refreshes)") $(delta "$reuse" "$(stat refresh_reuse)")"
behave '{"api_key": "key-0001"}'

# A server down, then up: connection refused is made again.
port=$(sed -E 's|.*:([0-9]+)$|\1|' <<<"$base")
kill "$(cat "$dir/fixture.pid")"
sleep 0.3
id=$(enqueue "$keyed" echo '{"text": "back up"}')
sleep 1.5
check "while the server is down the call waits to be made again" "^queued\|[1-9]" "$(as_alice -c "SELECT status || '|' || attempts FROM mcp_tool_calls WHERE id = $id")"
"${CARGO_TARGET_DIR:-$ROOT_DIR/target}/debug/mcp-oauth-fixture" "$port" >"$dir/fixture.out" 2>&1 &
echo $! >"$dir/fixture.pid"
for _ in $(seq 50); do curl -sf "$base/_fixture/stats" >/dev/null && break; sleep 0.1; done
behave '{"api_key": "key-0001"}'
check "... and once it is up, succeeds" '"text": "back up"' "$(as_alice -c "SELECT mcp_call_result($id, '20s')")"

# In flight at once, within the per-server cap.
behave '{"api_key": "key-0001", "mcp_delay_ms": 500}'
ids=$(as_alice -c "SELECT string_agg(mcp_call_tool_async('$keyed', 'echo', jsonb_build_object('text', 'n' || i))::text, ',') FROM generate_series(1, 12) i")
check "twelve queued calls all succeed" "^12$" "$(as_alice -c "SELECT count(*) FROM unnest('{$ids}'::bigint[]) i WHERE mcp_call_result(i, '20s') IS NOT NULL")"
check "... ten in flight at once (mcp_oauth.max_calls_per_server = 10)" "^10$" "$(stat peak_mcp_in_flight)"
psql_q -c "ALTER SYSTEM SET mcp_oauth.max_calls_per_server = 3" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
behave '{"api_key": "key-0001", "mcp_delay_ms": 300}'
ids=$(as_alice -c "SELECT string_agg(mcp_call_tool_async('$keyed', 'echo', jsonb_build_object('text', 'n' || i))::text, ',') FROM generate_series(1, 9) i")
check "with the cap at 3, nine calls succeed" "^9$" "$(as_alice -c "SELECT count(*) FROM unnest('{$ids}'::bigint[]) i WHERE mcp_call_result(i, '20s') IS NOT NULL")"
check "... never more than 3 in flight" "^3$" "$(stat peak_mcp_in_flight)"
psql_q -c "ALTER SYSTEM RESET mcp_oauth.max_calls_per_server" -c "SELECT pg_reload_conf()" >/dev/null
behave '{"api_key": "key-0001"}'

# The tasks extension: a server that answers with a task handle is polled
# (Mcp-Name naming the task) until the task ends; mcp_call_result is the same.
behave '{"api_key": "key-0001", "echo_as_task": true, "task_ms": 1200, "task_poll_ms": 150}'
made=$(stat tasks_created) polls=$(stat task_polls)
id=$(enqueue "$keyed" echo '{"text": "as a task"}')
check "a call the server runs as a task: its result once the task completes" '"text": "as a task"' "$(as_alice -c "SELECT mcp_call_result($id)")"
check "... one task made" "^1$" "$(delta "$made" "$(stat tasks_created)")"
check "... polled with tasks/get until it completed (at the suggested 150 ms)" "^([4-9]|1[0-2])$" "$(delta "$polls" "$(stat task_polls)")"
check "... every poll routed by Mcp-Name: the task id" "^0$" "$(stat task_misrouted)"
check "... its task id kept on the call" "^task-[0-9]+\|succeeded\|1$" "$(as_alice -c "SELECT task_id, status, attempts FROM mcp_tool_calls WHERE id = $id")"
check "a synchronous call never gets a task (the extension is declared only by the queue)" '"text": "sync"' \
  "$(as_alice -c "SELECT mcp_call_tool('$keyed', 'echo', '{\"text\": \"sync\"}')")"
check "... so no task was made for it" "^1$" "$(delta "$made" "$(stat tasks_created)")"
behave '{"api_key": "key-0001", "echo_as_task": true, "task_ms": 0, "task_poll_ms": 100, "task_fails": true, "task_error": "bad key key-0001"}'
id=$(enqueue "$keyed" echo '{"text": "failing task"}')
expect_error "a task that fails: MC005 with the server's error" MC005 "JSON-RPC error -32603" -- -U alice -c "SELECT mcp_call_result($id)"
check "... the credential it echoed is not kept" "^bad key \[redacted\]|^0$" \
  "$(as_alice -c "SELECT count(*) FROM mcp_tool_calls WHERE error_message LIKE '%key-0001%'")"
behave '{"api_key": "key-0001", "echo_as_task": true, "task_ms": 60000, "task_poll_ms": 200}'
cancels=$(stat task_cancels)
id=$(enqueue "$keyed" echo '{"text": "cancelled task"}')
for _ in $(seq 50); do [ -n "$(as_alice -c "SELECT task_id FROM mcp_tool_calls WHERE id = $id")" ] && break; sleep 0.1; done
check "cancelling a call that runs as a task" "^t$" "$(as_alice -c "SELECT mcp_cancel_call($id)")"
check "... ends it cancelled" "^cancelled$" "$(wait_status "$id" '^cancelled$')"
for _ in $(seq 30); do [ "$(delta "$cancels" "$(stat task_cancels)")" = 1 ] && break; sleep 0.1; done
check "... and asks the server to cancel the task (tasks/cancel)" "^1$" "$(delta "$cancels" "$(stat task_cancels)")"
# A restart while a task runs: polled again, not called again.
behave '{"api_key": "key-0001", "echo_as_task": true, "task_ms": 2500, "task_poll_ms": 200}'
made=$(stat tasks_created)
id=$(enqueue "$keyed" echo '{"text": "task across a crash"}')
for _ in $(seq 50); do [ -n "$(as_alice -c "SELECT task_id FROM mcp_tool_calls WHERE id = $id")" ] && break; sleep 0.1; done
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
check "a task running across a crash: its result after the restart" '"text": "task across a crash"' "$(as_alice -c "SELECT mcp_call_result($id, '20s')")"
check "... from the same task, the tool not called again" "^1\|1$" \
  "$(delta "$made" "$(stat tasks_created)")|$(curl -sf "$base/_fixture/stats" | jq -r '[.echoed[] | select(. == "task across a crash")] | length')"
behave '{"api_key": "key-0001"}'

# A worker killed mid-call: started again, it settles what it left running.
behave '{"api_key": "key-0001", "hang": true}'
id=$(enqueue "$keyed" echo '{"text": "killed"}')
wait_status "$id" '^running$' >/dev/null
psql_q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'mcp_oauth queue worker'" >/dev/null
check "a call in flight when its worker was killed ends failed, interrupted" "^failed$" "$(wait_status "$id" '^failed$')"
check "... saying so" "interrupted" "$(as_alice -c "SELECT error_message FROM mcp_tool_calls WHERE id = $id")"
behave '{"api_key": "key-0001"}'
id=$(enqueue "$keyed" echo '{"text": "after the kill"}')
check "the worker, started again, makes new calls" '"text": "after the kill"' "$(as_alice -c "SELECT mcp_call_result($id)")"

# A crash (immediate shutdown) with calls in flight: the server carried
# them out, but its answers never arrived.
behave '{"api_key": "key-0001", "tool_reply_delay_ms": 3000}'
before=$(as_alice -c "SELECT max(id) FROM mcp_tool_calls")
as_alice -c "SELECT mcp_call_tool_async('$keyed', 'echo', jsonb_build_object('text', 'crash' || i)) FROM generate_series(1, 3) i" >/dev/null
as_alice -c "SELECT mcp_call_tool_async('$keyed', 'add', '{\"a\": 1, \"b\": 1}') FROM generate_series(1, 2)" >/dev/null
sleep 1
check "five calls in flight before the crash" "^5$" "$(as_alice -c "SELECT count(*) FROM mcp_tool_calls WHERE status = 'running'")"
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
behave '{"api_key": "key-0001"}'
for _ in $(seq 100); do
  [ "$(as_alice -c "SELECT count(*) FROM mcp_tool_calls WHERE status IN ('queued', 'running')")" = 0 ] && break
  sleep 0.2
done
check "after the crash no call stays queued or running" "^0$" "$(as_alice -c "SELECT count(*) FROM mcp_tool_calls WHERE status IN ('queued', 'running')")"
check "... the echoes in flight failed, interrupted (not made twice)" "^3$" \
  "$(as_alice -c "SELECT count(*) FROM mcp_tool_calls WHERE id > $before AND name = 'echo' AND status = 'failed' AND error_message LIKE 'interrupted%'")"
check "... the read-only calls were made again and succeeded" "^2$" \
  "$(as_alice -c "SELECT count(*) FROM mcp_tool_calls WHERE id > $before AND name = 'add' AND status = 'succeeded' AND attempts = 2")"
check "... the server carried out each echo exactly once" "^crash1 1,crash2 1,crash3 1$" \
  "$(curl -sf "$base/_fixture/stats" | jq -r '[.echoed[] | select(startswith("crash"))] | group_by(.) | map("\(.[0]) \(length)") | join(",")')"
queued=$(as_alice -c "SELECT mcp_call_tool_async('$keyed', 'echo', '{\"text\": \"queued across a restart\"}')")
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
check "a call committed before a crash is made after it (or was made before)" '"text": "queued across a restart"' "$(as_alice -c "SELECT mcp_call_result($queued, '20s')")"

# A result over mcp_oauth.max_response_bytes fails the call, never truncated.
psql_q -c "ALTER SYSTEM SET mcp_oauth.max_response_bytes = '4kB'" -c "SELECT pg_reload_conf()" >/dev/null
behave '{"api_key": "key-0001", "big_bytes": 20000}'
sleep 0.5
id=$(enqueue "$keyed" big)
expect_error "a result larger than mcp_oauth.max_response_bytes: MC005" MC005 "larger than 4096 bytes" -- -U alice -c "SELECT mcp_call_result($id)"
check "... nothing of it stored" "^failed\|t$" "$(as_alice -c "SELECT status, result IS NULL FROM mcp_tool_calls WHERE id = $id")"
psql_q -c "ALTER SYSTEM RESET mcp_oauth.max_response_bytes" -c "SELECT pg_reload_conf()" >/dev/null
behave '{"api_key": "key-0001"}'

# Retention: finished calls are deleted after mcp_oauth.call_retention.
check "finished calls are kept" "^([1-9][0-9]+)$" "$(as_alice -c "SELECT count(*) FROM mcp_tool_calls")"
psql_q -c "ALTER SYSTEM SET mcp_oauth.call_retention = '1s'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1.5
psql_q -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do [ "$(as_alice -c "SELECT count(*) FROM mcp_tool_calls")" = 0 ] && break; sleep 0.2; done
check "... and deleted once older than mcp_oauth.call_retention" "^0$" "$(as_alice -c "SELECT count(*) FROM mcp_tool_calls")"
psql_q -c "ALTER SYSTEM RESET mcp_oauth.call_retention" -c "SELECT pg_reload_conf()" >/dev/null

# No queue in another database, or without workers.
psql_q -c "CREATE DATABASE other" >/dev/null
psql_q -d other -c "CREATE EXTENSION mcp_oauth" >/dev/null
expect_error "enqueueing in a database the workers do not serve" 55000 "serve the database \"postgres\"" -- -d other -c "SELECT mcp_call_tool_async(gen_random_uuid(), 'echo')"
echo "mcp_oauth.call_workers = 0" | cluster_conf
expect_error "enqueueing with no queue worker" 55000 "No queue worker runs" -- -U alice -c "SELECT mcp_call_tool_async('$keyed', 'echo')"

finish_checks queue
