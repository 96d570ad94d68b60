// The connectors page. Everything it shows comes from the backend's routes
// (each one SQL statement); cards change when the backend pushes an event
// (server-sent events from mcp_oauth's NOTIFY), never by polling. Text from
// servers is only ever set as textContent.
const $ = (selector, root = document) => root.querySelector(selector);

async function api(method, path, payload) {
  const response = await fetch(path, {
    method,
    headers: payload === undefined ? {} : { "content-type": "application/json" },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  const value = await response.json();
  if (!response.ok) {
    throw new Error(`${value.error}${value.hint ? ` (${value.hint})` : ""}${value.sqlstate ? ` [${value.sqlstate}]` : ""}`);
  }
  return value;
}

// The login page: one button per user.
if ($("#users")) {
  api("GET", "/api/users").then((users) => {
    for (const user of users) {
      const button = document.createElement("button");
      button.name = "user";
      button.value = user;
      button.textContent = `Continue as ${user}`;
      $("#users").append(button);
    }
  });
} else {
  connectorsPage();
}

function connectorsPage() {
  const cards = new Map();
  let toastTimer;
  const toast = (text) => {
    $("#toast").textContent = text;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => ($("#toast").textContent = ""), 4000);
  };

  // The sign-in popup is opened by the click itself (a popup opened after an
  // await would be blocked), then sent to the authorization server.
  async function signIn(id) {
    const popup = window.open("about:blank", "mcp_oauth_sign_in", "popup,width=520,height=680");
    try {
      const { url } = await api("POST", `/api/connectors/${id}/sign-in`);
      if (popup) popup.location.href = url;
      else window.location.href = url;
    } catch (error) {
      popup?.close();
      throw error;
    }
  }

  function pillClass(status) {
    if (status === "signed in" || status === "connected") return "ok";
    if (status.startsWith("error")) return "error";
    return "action";
  }

  function render(row) {
    let card = cards.get(row.id);
    if (!card) {
      card = $("#card").content.firstElementChild.cloneNode(true);
      card.dataset.id = row.id;
      card.addEventListener("click", (event) => act(row.id, event.target.dataset?.act, event.target));
      cards.set(row.id, card);
      $("#cards").append(card);
    }
    card.dataset.status = row.status;
    $(".name", card).textContent = row.name;
    const pill = $(".pill", card);
    pill.textContent = row.status;
    pill.title = row.status;
    pill.className = `pill ${pillClass(row.status)}`;
    $(".url", card).textContent = row.url;
    $(".auth", card).textContent =
      row.auth_type === "oauth"
        ? "OAuth"
        : `Headers: ${(row.header_keys ?? []).map((name) => `${name}: ••••••`).join(", ") || "none"}`;
    $(".detail", card).textContent = row.last_error && !row.status.startsWith("error") ? row.last_error : "";
    const oauth = row.auth_type === "oauth";
    const ready = row.status === "signed in" || row.status === "connected";
    $("[data-act=sign-in]", card).hidden = !oauth;
    $("[data-act=sign-in]", card).textContent = row.status === "sign-in required" ? "Sign in" : "Sign in again";
    $("[data-act=disconnect]", card).hidden = !oauth || row.status === "sign-in required";
    if (ready) loadTools(row.id);
    else $(".tools", card).hidden = true;
    $("#empty").hidden = cards.size > 0;
  }

  async function loadTools(id) {
    const card = cards.get(id);
    try {
      const tools = await api("GET", `/api/connectors/${id}/tools`);
      $(".tools summary", card).textContent = `${tools.length} tool${tools.length === 1 ? "" : "s"}`;
      $(".tools ul", card).replaceChildren(
        ...tools.map((tool) => {
          const item = document.createElement("li");
          const description = document.createElement("span");
          description.textContent = tool.description ? ` — ${tool.description}` : "";
          item.append(tool.title || tool.name, description);
          item.dataset.tool = tool.name;
          return item;
        }),
      );
      $(".tools", card).hidden = false;
    } catch (error) {
      $(".result", card).textContent = `Tools: ${error.message}`;
    }
  }

  async function refresh(id) {
    try {
      render(await api("GET", `/api/connectors/${id}`));
    } catch {
      cards.get(id)?.remove();
      cards.delete(id);
      $("#empty").hidden = cards.size > 0;
    }
  }

  async function reloadAll() {
    const rows = await api("GET", "/api/connectors");
    for (const [id, card] of cards) {
      if (!rows.some((row) => row.id === id)) {
        card.remove();
        cards.delete(id);
      }
    }
    rows.forEach(render);
    $("#empty").hidden = cards.size > 0;
  }

  async function act(id, action, button) {
    if (!action) return;
    const card = cards.get(id);
    const result = $(".result", card);
    result.textContent = "";
    try {
      if (action === "sign-in") {
        await signIn(id);
        result.textContent = "Signing in…";
      } else if (action === "test") {
        button.disabled = true;
        const outcome = await api("POST", `/api/connectors/${id}/test`).finally(() => (button.disabled = false));
        result.textContent = outcome.ok ? `Test passed: ${outcome.tool_count} tools` : `Test failed: ${outcome.error}`;
        await refresh(id);
      } else if (action === "disconnect") {
        const outcome = await api("POST", `/api/connectors/${id}/disconnect`);
        result.textContent = `Disconnected (revocation: ${outcome.revocation})`;
        await refresh(id);
      } else if (action === "delete") {
        if (!window.confirm(`Delete ${$(".name", card).textContent}?`)) return;
        await api("DELETE", `/api/connectors/${id}`);
        card.remove();
        cards.delete(id);
        $("#empty").hidden = cards.size > 0;
        toast("Connector deleted.");
      }
    } catch (error) {
      result.textContent = error.message;
    }
  }

  // The Add form.
  const form = $("#add");
  const headerRow = () => $("#header-rows").append($("#header-row").content.firstElementChild.cloneNode(true));
  const mode = () => form.elements.auth.value;
  const showMode = () => {
    $("#headers").hidden = mode() !== "headers";
    $("#save").textContent = mode() === "headers" ? "Save" : "Save & sign in";
    if (mode() === "headers" && !$("#header-rows").children.length) headerRow();
  };
  $("#add-open").addEventListener("click", () => {
    form.hidden = false;
    form.elements.name.focus();
  });
  $("#add-cancel").addEventListener("click", () => {
    form.reset();
    $("#header-rows").replaceChildren();
    form.hidden = true;
  });
  form.addEventListener("change", showMode);
  $("#header-add").addEventListener("click", headerRow);
  $("#header-rows").addEventListener("click", (event) => {
    if (event.target.classList.contains("h-remove")) event.target.parentElement.remove();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    $("#add-error").textContent = "";
    const oauth = mode() === "oauth";
    // Opened now, inside the click, so that no popup blocker stops it.
    const popup = oauth ? window.open("about:blank", "mcp_oauth_sign_in", "popup,width=520,height=680") : null;
    try {
      const headers = [...$("#header-rows").children].map((row) => ({
        name: $(".h-name", row).value.trim(),
        value: $(".h-value", row).value,
      }));
      const { id } = await api("POST", "/api/connectors", {
        name: form.elements.name.value,
        url: form.elements.url.value,
        auth: mode(),
        headers: oauth ? [] : headers,
      });
      form.reset();
      $("#header-rows").replaceChildren();
      form.hidden = true;
      showMode();
      await refresh(id);
      if (oauth) {
        const { url } = await api("POST", `/api/connectors/${id}/sign-in`);
        if (popup) popup.location.href = url;
        $(".result", cards.get(id)).textContent = "Signing in…";
      }
    } catch (error) {
      popup?.close();
      $("#add-error").textContent = error.message;
    }
  });

  // The popup's last page (mcp_oauth_callback_page) posts the outcome here;
  // the card itself changes when the backend pushes the notification.
  window.addEventListener("message", (event) => {
    if (event.origin !== window.location.origin || event.data?.type !== "mcp_oauth_done") return;
    const card = cards.get(event.data.server_id);
    if (card) $(".result", card).textContent = event.data.success ? "" : `Sign-in failed: ${event.data.error}`;
    toast(event.data.success ? "Signed in." : "The sign-in did not finish.");
  });

  // Pushed updates: a sign-in stored, a re-authentication needed. After a
  // reconnect every card is reloaded, since events may have been missed.
  const events = new EventSource("/api/events");
  events.addEventListener("signed_in", (event) => refresh(JSON.parse(event.data).server_id));
  events.addEventListener("reauth", async (event) => {
    const id = JSON.parse(event.data).server_id;
    await refresh(id);
    if (cards.has(id)) toast(`${$(".name", cards.get(id)).textContent} needs you to sign in again.`);
  });
  events.addEventListener("resync", reloadAll);
  let opened = false;
  events.addEventListener("open", () => {
    if (opened) reloadAll();
    opened = true;
    document.body.dataset.events = "open";
  });

  api("GET", "/api/me").then(({ user }) => ($("#me").textContent = user));
  reloadAll();
}
