//! `mcp-bench-client URL SECONDS CONNECTIONS [HEADER:VALUE]...`: the
//! physical limit's other half. Sends the same 2026-07-28 `tools/call`
//! (echo "hello") as `mcp_call_tool` does, over CONNECTIONS keep-alive
//! connections, each one request at a time, for SECONDS; prints one JSON
//! line: calls, seconds, calls_per_second, p50_us, p90_us, p99_us.

use std::time::{Duration, Instant};

fn body(id: u64) -> String {
    serde_json::json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {
            "name": "echo", "arguments": {"text": "hello"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "mcp-bench-client", "version": "1"}
            }
        }
    })
    .to_string()
}

async fn worker(client: reqwest::Client, url: String, headers: Vec<(String, String)>, until: Instant) -> Vec<u32> {
    let mut latencies = Vec::new();
    let mut id = 0;
    while Instant::now() < until {
        id += 1;
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "echo")
            .body(body(id));
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let started = Instant::now();
        let response = request.send().await.expect("the request is sent");
        assert!(response.status().is_success(), "HTTP {}", response.status());
        let text = response.bytes().await.expect("the body is read");
        assert!(text.windows(5).any(|w| w == b"hello"), "the echo came back");
        latencies.push(started.elapsed().as_micros() as u32);
    }
    latencies
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("URL");
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).expect("SECONDS");
    let connections: usize = args.next().and_then(|s| s.parse().ok()).expect("CONNECTIONS");
    let headers: Vec<(String, String)> = args
        .map(|h| {
            let (name, value) = h.split_once(':').expect("HEADER:VALUE");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    // One connection: everything on this thread (no cross-thread wake-ups);
    // more: a worker thread per core.
    let runtime = if connections == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(connections.clamp(1, 2)).enable_all().build()
    }
    .expect("a runtime");
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build().expect("a client");
    // One warm-up request per connection, so no connection setup is measured.
    let warm = Instant::now() + Duration::from_millis(200);
    runtime.block_on(async {
        let tasks: Vec<_> = (0..connections).map(|_| tokio::spawn(worker(client.clone(), url.clone(), headers.clone(), warm))).collect();
        for t in tasks {
            t.await.expect("warm-up");
        }
    });
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let mut latencies: Vec<u32> = runtime.block_on(async {
        let tasks: Vec<_> = (0..connections).map(|_| tokio::spawn(worker(client.clone(), url.clone(), headers.clone(), until))).collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("worker"));
        }
        all
    });
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    println!(
        "{}",
        serde_json::json!({
            "calls": latencies.len(),
            "seconds": elapsed,
            "calls_per_second": latencies.len() as f64 / elapsed,
            "p50_us": percentile(&latencies, 0.5),
            "p90_us": percentile(&latencies, 0.9),
            "p99_us": percentile(&latencies, 0.99),
        })
    );
}
