//! An MCP server built on rmcp's own server (its `ServerHandler`, its
//! `TaskManager` for the tasks extension and its Streamable HTTP service),
//! for the peer tests: `echo`, and `slow_echo`, which runs as a task when
//! the client declares `io.modelcontextprotocol/tasks`. Our code here is
//! only the tools and a counter of what they did (GET /stats); the protocol
//! is rmcp's.
//!
//!   mcp-oauth-peer-rmcp PORT    # prints its base URL, serves /mcp and /stats

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock, CreateTaskResult, GetTaskParams,
    GetTaskResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, UpdateTaskParams,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::task_manager::{TaskExit, TaskManager, TaskOptions};
use rmcp::transport::streamable_http_server::{session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the tools did, for the tests to read.
#[derive(Default)]
struct Stats {
    tasks_created: u32,
    task_polls: u32,
    task_cancels: u32,
    /// How many times each text was echoed (the work carried out).
    executed: BTreeMap<String, u32>,
}

#[derive(Clone)]
struct Peer {
    tasks: TaskManager,
    stats: Arc<Mutex<Stats>>,
}

fn schema() -> Arc<Map<String, Value>> {
    let schema = json!({"type": "object", "properties": {"text": {"type": "string"}, "ms": {"type": "integer"}}});
    Arc::new(schema.as_object().cloned().unwrap_or_default())
}

fn text_of(request: &CallToolRequestParams) -> (String, u64) {
    let args = request.arguments.clone().unwrap_or_default();
    let text = args.get("text").and_then(Value::as_str).unwrap_or("").to_owned();
    let ms = args.get("ms").and_then(Value::as_u64).unwrap_or(1500);
    (text, ms)
}

impl ServerHandler for Peer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_tasks().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new("echo", "Returns its text.", schema()),
            Tool::new("slow_echo", "Returns its text after ms milliseconds; as a task when the client supports tasks.", schema()),
        ]))
    }

    async fn call_tool(&self, request: CallToolRequestParams, context: RequestContext<RoleServer>) -> Result<CallToolResponse, ErrorData> {
        let (text, ms) = text_of(&request);
        let stats = self.stats.clone();
        let work = move |text: String| {
            *stats.lock().unwrap().executed.entry(text.clone()).or_insert(0) += 1;
            CallToolResult::success(vec![ContentBlock::text(text)])
        };
        match request.name.as_ref() {
            "echo" => Ok(CallToolResponse::Complete(work(text))),
            "slow_echo" if context.client_capabilities().is_some_and(|caps| caps.supports_tasks()) => {
                self.stats.lock().unwrap().tasks_created += 1;
                let task = self.tasks.spawn(TaskOptions::new().with_poll_interval_ms(200), move |ctx| {
                    Box::pin(async move {
                        tokio::select! {
                            _ = ctx.cancelled() => Err(TaskExit::Cancelled),
                            _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok(work(text)),
                        }
                    })
                });
                Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
            }
            "slow_echo" => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(CallToolResponse::Complete(work(text)))
            }
            _ => Err(ErrorData::invalid_params("no such tool", None)),
        }
    }

    async fn get_task(&self, request: GetTaskParams, _context: RequestContext<RoleServer>) -> Result<GetTaskResult, ErrorData> {
        self.stats.lock().unwrap().task_polls += 1;
        Ok(GetTaskResult::new(self.tasks.get_task(&request.task_id)?))
    }

    async fn update_task(&self, request: UpdateTaskParams, _context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.tasks.update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(&self, request: CancelTaskParams, _context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.stats.lock().unwrap().task_cancels += 1;
        self.tasks.cancel_task(&request.task_id)
    }
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let peer = Peer { tasks: TaskManager::new(), stats: stats.clone() };
    let service = StreamableHttpService::new(
        move || Ok(peer.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let stats_route = axum::routing::get(move || {
        let stats = stats.clone();
        async move {
            let s = stats.lock().unwrap();
            axum::Json(
                json!({"tasks_created": s.tasks_created, "task_polls": s.task_polls, "task_cancels": s.task_cancels, "executed": s.executed}),
            )
        }
    });
    let router = axum::Router::new().nest_service("/mcp", service).route("/stats", stats_route);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("http://{}", listener.local_addr().expect("bound"));
    axum::serve(listener, router).await.expect("serve");
}
