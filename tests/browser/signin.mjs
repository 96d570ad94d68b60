// Drives the example application in headless Chromium as a user would:
// add a connector, sign in in the popup (the fixture's login form, a wrong
// password first), see "signed in", call a tool. A screenshot of each step
// goes to the artifacts directory.
//
//   node signin.mjs APP_URL MCP_URL SCREENSHOT_DIR
import { chromium } from "playwright-core";

const [appUrl, mcpUrl, shots] = process.argv.slice(2);
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
const shot = (page, name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const statusIs = (page, text) =>
  page.waitForFunction((t) => document.querySelector("#status").textContent === t, text, { timeout: 15000 }).then(() => true, () => false);

try {
  const page = await browser.newPage();
  await page.goto(appUrl);
  await shot(page, "1-page");
  await page.fill("#url", mcpUrl);
  await page.click("#add");
  check("Add connector adds it", await statusIs(page, "added"), await page.textContent("#status"));
  await shot(page, "2-added");

  const opened = page.waitForEvent("popup");
  await page.click("#sign-in");
  const popup = await opened;
  await popup.waitForSelector("input[name=username]");
  check("Sign in opens the authorization server's login page in a popup", (await popup.title()).includes("sign in"), await popup.title());
  await shot(popup, "3-login");
  await popup.fill("input[name=username]", "alice");
  await popup.fill("input[name=password]", "not the password");
  await popup.click("button[value=approve]");
  await popup.waitForSelector(".error");
  check("a wrong password is refused there", (await popup.textContent(".error")).includes("Wrong username or password"), await popup.textContent("body"));
  await shot(popup, "4-wrong-password");
  await popup.fill("input[name=username]", "alice");
  await popup.fill("input[name=password]", "wonderland");
  await shot(popup, "5-filled");
  const closed = popup.waitForEvent("close", { timeout: 15000 }).then(() => true, () => false);
  await popup.click("button[value=approve]");
  check("the popup closes itself after the callback", await closed, "still open");
  check("the page shows signed in", await statusIs(page, "signed in"), await page.textContent("#status"));
  await shot(page, "6-signed-in");

  await page.click("#call");
  check("Call tool shows the tool's result", await statusIs(page, "tool called"), await page.textContent("#status"));
  check("... which is what the tool returned", (await page.textContent("#result")) === "hello from the browser", await page.textContent("#result"));
  await shot(page, "7-tool-called");
} catch (error) {
  check("the walk-through ran to its end", false, error.message);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
