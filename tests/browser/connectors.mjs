// Drives the connectors page (examples/web-app) in headless Chromium as two
// users side by side. Alice adds an OAuth connector and signs in through the
// popup; Bob adds an API-key connector whose value must never come back to a
// browser. The app loses its LISTEN connection and opens another; then the
// authorization server revokes Alice's grant while her page is open, and a
// background job's call finds out: her card must change without a reload. A screenshot of each step goes to SCREENSHOT_DIR.
//
//   node connectors.mjs APP_URL FIXTURE_URL SCREENSHOT_DIR API_KEY
// (PGHOST, PGPORT, PGDATABASE: the app's database; the job connects as "app")
import { chromium } from "playwright-core";
import pg from "pg";

const [appUrl, fixture, shots, apiKey] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
  headless: true,
});
let failed = 0;
const check = (name, ok, got) => {
  console.log(`${ok ? "ok  " : "FAIL"} - ${name}${ok ? "" : ` (got: ${got})`}`);
  if (!ok) failed += 1;
};
const shot = (page, name) => page.screenshot({ path: `${shots}/${name}.png` });
const behave = (config) =>
  fetch(`${fixture}/_fixture/config`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(config) });
const card = (page, name) => page.locator(".card", { has: page.locator("h3", { hasText: name }) });
const pillIs = (page, name, text, timeout = 15000) =>
  card(page, name)
    .locator(".pill", { hasText: text })
    .waitFor({ timeout })
    .then(() => true, () => false);
const pillOf = (page, name) => card(page, name).locator(".pill").textContent().catch((e) => e.message);

// A user's own browser (a context: its own cookies), signed in to the app.
async function userPage(user) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  // Every body the browser receives, to prove what never reaches it.
  page.received = [];
  page.on("response", async (response) => {
    if (response.headers()["content-type"]?.startsWith("text/event-stream")) return;
    page.received.push(await response.text().catch(() => ""));
  });
  await page.goto(appUrl);
  await page.locator("button", { hasText: `Continue as ${user}` }).click();
  await page.waitForSelector("body[data-events=open]");
  return page;
}

async function signInThroughPopup(page, opener) {
  const opened = page.waitForEvent("popup");
  await opener();
  const popup = await opened;
  await popup.waitForSelector("input[name=username]", { timeout: 15000 });
  const closed = popup.waitForEvent("close", { timeout: 15000 }).then(() => true, () => false);
  return { popup, closed };
}

try {
  const alice = await userPage("alice");
  await shot(alice, "connectors-1-empty");
  check("a new user has no connectors", await alice.locator("#empty").isVisible(), "cards shown");

  // Alice: OAuth, "Save & sign in" opens the popup at once.
  await alice.click("#add-open");
  await alice.fill("input[name=name]", "Fixture");
  await alice.fill("input[name=url]", `${fixture}/mcp`);
  await shot(alice, "connectors-2-add-oauth");
  const { popup, closed } = await signInThroughPopup(alice, () => alice.click("#save"));
  check("Save & sign in opens the authorization server's sign-in page in a popup", (await popup.title()).includes("sign in"), await popup.title());
  check("... while the new card says sign-in required", await pillIs(alice, "Fixture", "sign-in required"), await pillOf(alice, "Fixture"));
  await popup.fill("input[name=username]", "alice");
  await popup.fill("input[name=password]", "wonderland");
  await shot(popup, "connectors-3-popup");
  await alice.evaluate(() => (window.notReloaded = true));
  await popup.click("button[value=approve]");
  check("the callback page closes the popup", await closed, "still open");
  check("the card turns signed in (pushed)", await pillIs(alice, "Fixture", "signed in"), await pillOf(alice, "Fixture"));
  const echo = card(alice, "Fixture").locator("li[data-tool=echo]");
  check("the connector's tools are shown after sign-in", await echo.waitFor({ state: "attached", timeout: 10000 }).then(() => true, () => false), await card(alice, "Fixture").textContent());
  await card(alice, "Fixture").locator("details.tools summary").click();
  await shot(alice, "connectors-4-signed-in");

  // Bob, side by side: an API key whose value is write-only.
  const bob = await userPage("bob");
  check("Bob does not see Alice's connector", (await bob.locator(".card").count()) === 0, await bob.locator(".card").count());
  await bob.click("#add-open");
  await bob.fill("input[name=name]", "Keyed");
  await bob.fill("input[name=url]", `${fixture}/mcp`);
  await bob.check("input[value=headers]");
  await bob.fill(".h-name", "X-Api-Key");
  await bob.fill(".h-value", apiKey);
  check("the button says Save for headers", (await bob.textContent("#save")) === "Save", await bob.textContent("#save"));
  check("a header value is typed into a password field", (await bob.getAttribute(".h-value", "type")) === "password", "visible");
  await shot(bob, "connectors-5-add-headers");
  await bob.click("#save");
  check("Bob's headers connector is connected", await pillIs(bob, "Keyed", "connected"), await pillOf(bob, "Keyed"));
  check("... and lists its tools", await card(bob, "Keyed").locator("li[data-tool=echo]").waitFor({ state: "attached", timeout: 10000 }).then(() => true, () => false), "no tools");
  check("... and shows the header's name, not its value", (await card(bob, "Keyed").locator(".auth").textContent()) === "Headers: X-Api-Key: ••••••", await card(bob, "Keyed").locator(".auth").textContent());
  await bob.reload();
  await bob.waitForSelector("body[data-events=open]");
  await card(bob, "Keyed").waitFor();
  await card(bob, "Keyed").locator("[data-act=test]").click();
  await card(bob, "Keyed").locator(".result", { hasText: "Test passed" }).waitFor({ timeout: 10000 }).catch(() => {});
  check("Test passes with the key", (await card(bob, "Keyed").locator(".result").textContent()).startsWith("Test passed"), await card(bob, "Keyed").locator(".result").textContent());
  await shot(bob, "connectors-6-bob");
  const html = await bob.content();
  check("the header value never reached Bob's browser (responses, page)", !bob.received.some((text) => text.includes(apiKey)) && !html.includes(apiKey), "found");
  check("... which did receive the connector list", bob.received.some((text) => text.includes("X-Api-Key")), bob.received.length);

  // Isolation: each sees only their own, and Alice's id is nobody else's.
  const aliceId = await card(alice, "Fixture").getAttribute("data-id");
  check("Alice sees only her connector", (await alice.locator(".card").count()) === 1, await alice.locator(".card").count());
  const foreign = await bob.request.post(`${appUrl}api/connectors/${aliceId}/test`);
  const foreignBody = await foreign.json();
  check("Bob cannot test Alice's connector by its id (42704)", foreignBody.sqlstate === "42704" && foreignBody.ok !== true, JSON.stringify(foreignBody));
  const foreignTools = await (await bob.request.get(`${appUrl}api/connectors/${aliceId}/tools`)).json();
  check("... nor list its tools (42704)", foreignTools.sqlstate === "42704", JSON.stringify(foreignTools));

  // The app's LISTEN connection is lost (a restart, a failover): it opens
  // a new one, and what follows is still pushed.
  const job = new pg.Client({ user: "app" });
  await job.connect();
  const listener = "SELECT pid FROM pg_stat_activity WHERE usename = 'app' AND query LIKE 'LISTEN%'";
  const [lost] = (await job.query(listener)).rows;
  await job.query("SELECT pg_terminate_backend($1)", [lost?.pid ?? 0]);
  let renewed = null;
  for (let i = 0; i < 50 && !renewed; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    renewed = (await job.query(listener)).rows.find((row) => row.pid !== lost?.pid) ?? null;
  }
  check("the app listens again after its LISTEN connection is killed", lost && renewed, JSON.stringify({ lost, renewed }));

  // The authorization server revokes Alice's grant while her page is open; a
  // background job of the app (the pooled role, her identity) calls a tool.
  await behave({ login_form: true, api_key: apiKey, revoke_access: true, invalid_grant: true });
  await job.query("BEGIN");
  await job.query("SELECT set_config('app.user_id', 'alice', true)");
  const jobError = await job.query("SELECT mcp_call_tool($1, 'echo', '{\"text\": \"from a job\"}')", [aliceId]).then(() => null, (e) => e.code);
  await job.query("ROLLBACK");
  await job.end();
  check("the job's call is refused: sign in again (MC001)", jobError === "MC001", jobError);
  check("Alice's open page shows re-authentication required, pushed", await pillIs(alice, "Fixture", "re-authentication required"), await pillOf(alice, "Fixture"));
  check("... without a reload", await alice.evaluate(() => window.notReloaded === true), "reloaded");
  check("... and Bob's page is untouched", (await pillOf(bob, "Keyed")) === "connected", await pillOf(bob, "Keyed"));
  await shot(alice, "connectors-7-reauth");

  // Sign in again, through the popup.
  await behave({ login_form: true, api_key: apiKey });
  const again = await signInThroughPopup(alice, () => card(alice, "Fixture").locator("[data-act=sign-in]").click());
  check("the card offers Sign in again", (await card(alice, "Fixture").locator("[data-act=sign-in]").textContent()) === "Sign in again", "other label");
  await again.popup.fill("input[name=username]", "alice");
  await again.popup.fill("input[name=password]", "wonderland");
  await again.popup.click("button[value=approve]");
  check("Sign in again: the popup closes", await again.closed, "still open");
  check("... and the card is signed in again (pushed)", await pillIs(alice, "Fixture", "signed in"), await pillOf(alice, "Fixture"));
  check("... still without a reload", await alice.evaluate(() => window.notReloaded === true), "reloaded");

  // An error: Bob's key is no longer accepted; Test records it.
  await behave({ login_form: true, api_key: `${apiKey}-rotated` });
  await card(bob, "Keyed").locator("[data-act=test]").click();
  check("a failing Test shows error: … on the card", await pillIs(bob, "Keyed", "error: "), await pillOf(bob, "Keyed"));
  await shot(bob, "connectors-8-error");

  // Disconnect, then Delete.
  await card(alice, "Fixture").locator("[data-act=disconnect]").click();
  check("Disconnect: the card says sign-in required", await pillIs(alice, "Fixture", "sign-in required"), await pillOf(alice, "Fixture"));
  check("... and how the revocation went", (await card(alice, "Fixture").locator(".result").textContent()).startsWith("Disconnected (revocation:"),
    await card(alice, "Fixture").locator(".result").textContent());
  await card(alice, "Fixture").locator("[data-act=delete]").click();
  check("Delete removes the card", await card(alice, "Fixture").waitFor({ state: "detached", timeout: 10000 }).then(() => true, () => false), "still there");
  check("... and Bob's connector stays", (await bob.locator(".card").count()) === 1, await bob.locator(".card").count());
} catch (error) {
  check("the walk-through ran to its end", false, error.message);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
