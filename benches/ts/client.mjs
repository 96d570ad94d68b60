// node client.mjs URL SECONDS [HEADER:VALUE]...: the MCP TypeScript SDK's
// client over one Streamable HTTP transport, calling the echo tool
// sequentially for SECONDS; prints one JSON line like mcp-bench-client.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, seconds, ...headerArgs] = process.argv.slice(2);
const headers = Object.fromEntries(headerArgs.map((h) => [h.slice(0, h.indexOf(":")), h.slice(h.indexOf(":") + 1)]));
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
const client = new Client({ name: "mcp-oauth-bench-ts", version: "1" });
await client.connect(transport);

const call = async () => {
  const result = await client.callTool({ name: "echo", arguments: { text: "hello" } });
  if (result.content?.[0]?.text !== "hello") throw new Error("the echo did not come back");
};
const warmUntil = performance.now() + 200;
while (performance.now() < warmUntil) await call();

const latencies = [];
const started = performance.now();
const until = started + Number(seconds) * 1000;
while (performance.now() < until) {
  const t = performance.now();
  await call();
  latencies.push(Math.round((performance.now() - t) * 1000));
}
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.round((latencies.length - 1) * p)] ?? 0;
console.log(JSON.stringify({
  calls: latencies.length, seconds: elapsed, calls_per_second: latencies.length / elapsed,
  p50_us: pct(0.5), p90_us: pct(0.9), p99_us: pct(0.99),
}));
await client.close();
