// The page: add a connector, sign in in a popup, call a tool. The popup's
// last page (mcp_oauth_callback_page) posts the outcome here.
const $ = (id) => document.getElementById(id);
let serverId = null;

async function api(path, payload) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(payload ?? {}),
  });
  const value = await response.json();
  if (!response.ok) throw new Error(`${value.sqlstate}: ${value.error}${value.hint ? ` (${value.hint})` : ""}`);
  return value;
}

function status(text) {
  $("status").textContent = text;
}

$("add").addEventListener("click", async () => {
  try {
    serverId = (await api("/api/servers", { name: $("name").value, url: $("url").value })).id;
    status("added");
    $("sign-in").disabled = false;
  } catch (error) {
    status(error.message);
  }
});

$("sign-in").addEventListener("click", async () => {
  try {
    const { url } = await api(`/api/servers/${serverId}/sign-in`);
    window.open(url, "mcp_oauth", "popup,width=520,height=640");
    status("signing in…");
  } catch (error) {
    status(error.message);
  }
});

window.addEventListener("message", (event) => {
  if (event.origin !== window.location.origin || event.data?.type !== "mcp_oauth_done") return;
  if (event.data.success && event.data.server_id === serverId) {
    status("signed in");
    $("call").disabled = false;
  } else {
    status(`sign-in failed: ${event.data.error}`);
  }
});

$("call").addEventListener("click", async () => {
  try {
    const result = await api(`/api/servers/${serverId}/tools/echo`, { text: "hello from the browser" });
    $("result").textContent = result.content?.[0]?.text ?? JSON.stringify(result);
    status("tool called");
  } catch (error) {
    status(error.message);
  }
});
