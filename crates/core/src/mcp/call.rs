//! What the extension asks of a server, in rmcp's request types: the
//! parameters of each method, the per-request `_meta` of 2026-07-28, and the
//! JSON-RPC envelope around them.

use rmcp::model::{
    CallToolRequestParams, CancelTaskParams, ClientCapabilities, GetPromptRequestParams, GetTaskParams, Implementation, InputResponses,
    JsonObject, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, RequestMetaObject,
};
use serde::Serialize;

/// A list a server may split into pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Tools,
    Resources,
    ResourceTemplates,
    Prompts,
    /// The skills extension's `skills/list`.
    Skills,
}

impl Listing {
    pub fn method(self) -> &'static str {
        match self {
            Listing::Tools => "tools/list",
            Listing::Resources => "resources/list",
            Listing::ResourceTemplates => "resources/templates/list",
            Listing::Prompts => "prompts/list",
            Listing::Skills => "skills/list",
        }
    }

    /// The result's field that holds the page's items.
    pub fn field(self) -> &'static str {
        match self {
            Listing::Tools => "tools",
            Listing::Resources => "resources",
            Listing::ResourceTemplates => "resourceTemplates",
            Listing::Prompts => "prompts",
            Listing::Skills => "skills",
        }
    }
}

/// The application's answers to a server's input requests (SEP-2322), sent
/// with a repeat of the request that asked for them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputRound {
    /// Keyed as the server keyed its `inputRequests`; a session-based
    /// server's mid-request questions are answered by method name
    /// (`elicitation/create`, `sampling/createMessage`, `roots/list`).
    pub responses: Option<InputResponses>,
    /// The server's `requestState`, echoed exactly.
    pub request_state: Option<String>,
}

/// One request of the extension, with its parameters.
#[derive(Debug, Clone)]
pub enum Call {
    List(Listing, PaginatedRequestParams),
    /// With the lifetime in milliseconds of the task it asks a
    /// session-based server to make of the call (2025-11-25 tasks: `task`
    /// in the parameters), when the tool requires one.
    CallTool(CallToolRequestParams, Option<u64>),
    ReadResource(ReadResourceRequestParams),
    GetPrompt(GetPromptRequestParams),
    /// The tasks extension (`io.modelcontextprotocol/tasks`): a task's state.
    GetTask(GetTaskParams),
    CancelTask(CancelTaskParams),
    /// 2025-11-25 tasks: `tasks/result`, which waits for the task to end;
    /// with the answers of the call the task stands for, for the questions
    /// the server asks on its stream meanwhile.
    TaskResult(GetTaskParams, Option<InputResponses>),
}

#[derive(Serialize)]
struct Envelope<'a, P: Serialize> {
    jsonrpc: &'static str,
    id: i64,
    method: &'a str,
    params: &'a P,
}

impl Call {
    pub fn list(listing: Listing, cursor: Option<String>) -> Self {
        let mut params = PaginatedRequestParams::default();
        params.cursor = cursor;
        Call::List(listing, params)
    }

    pub fn call_tool(name: &str, arguments: JsonObject, input: InputRound) -> Self {
        let mut params = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments);
        params.input_responses = input.responses;
        params.request_state = input.request_state;
        Call::CallTool(params, None)
    }

    /// Asks a session-based server to run this tool call as a task
    /// living `ttl_ms` (a tool that requires it, 2025-11-25).
    pub fn as_task(&mut self, ttl_ms: u64) {
        if let Call::CallTool(_, task) = self {
            *task = Some(ttl_ms);
        }
    }

    /// `tasks/result` of `task_id`, for the tool call `self` made the task of.
    pub fn task_result(&self, task_id: &str) -> Self {
        Call::TaskResult(GetTaskParams::new(task_id), self.input_responses().cloned())
    }

    pub fn read_resource(uri: &str, input: InputRound) -> Self {
        let mut params = ReadResourceRequestParams::new(uri);
        params.input_responses = input.responses;
        params.request_state = input.request_state;
        Call::ReadResource(params)
    }

    pub fn get_prompt(name: &str, arguments: JsonObject, input: InputRound) -> Self {
        let mut params = GetPromptRequestParams::new(name);
        if !arguments.is_empty() {
            params.arguments = Some(arguments);
        }
        params.input_responses = input.responses;
        params.request_state = input.request_state;
        Call::GetPrompt(params)
    }

    pub fn get_task(task_id: &str) -> Self {
        Call::GetTask(GetTaskParams::new(task_id))
    }

    pub fn cancel_task(task_id: &str) -> Self {
        Call::CancelTask(CancelTaskParams::new(task_id))
    }

    pub fn method(&self) -> &'static str {
        match self {
            Call::List(listing, _) => listing.method(),
            Call::CallTool(..) => "tools/call",
            Call::ReadResource(_) => "resources/read",
            Call::GetPrompt(_) => "prompts/get",
            Call::GetTask(_) => "tasks/get",
            Call::CancelTask(_) => "tasks/cancel",
            Call::TaskResult(..) => "tasks/result",
        }
    }

    /// What `Mcp-Name` carries: the tool's or prompt's name, the resource's
    /// URI, the task's id (so that a load balancer routes it to the server
    /// instance holding the task).
    pub fn name(&self) -> Option<&str> {
        match self {
            Call::List(..) => None,
            Call::CallTool(p, _) => Some(&p.name),
            Call::ReadResource(p) => Some(&p.uri),
            Call::GetPrompt(p) => Some(&p.name),
            Call::GetTask(p) => Some(&p.task_id),
            Call::CancelTask(p) => Some(&p.task_id),
            Call::TaskResult(p, _) => Some(&p.task_id),
        }
    }

    /// The tool's arguments (for its `Mcp-Param-*` headers).
    pub fn tool_arguments(&self) -> Option<&JsonObject> {
        match self {
            Call::CallTool(p, _) => p.arguments.as_ref(),
            _ => None,
        }
    }

    /// The answers this request carries for a session-based server's
    /// mid-request questions.
    pub fn input_responses(&self) -> Option<&InputResponses> {
        match self {
            Call::List(..) | Call::GetTask(_) | Call::CancelTask(_) => None,
            Call::CallTool(p, _) => p.input_responses.as_ref(),
            Call::TaskResult(_, answers) => answers.as_ref(),
            Call::ReadResource(p) => p.input_responses.as_ref(),
            Call::GetPrompt(p) => p.input_responses.as_ref(),
        }
    }

    /// The JSON-RPC request. `meta` is the serialised `_meta` of a
    /// 2026-07-28 request (see `request_meta`), written into the parameters
    /// as it is (it is the same for every request of a session, so it is
    /// serialised once); without it the request is for a session-based
    /// server, which knows neither `_meta` context nor `inputResponses`,
    /// and a tool call made a task of carries `task` instead.
    pub fn body(&mut self, id: i64, meta: Option<&str>) -> String {
        let method = self.method();
        let task = match self {
            Call::CallTool(_, Some(ttl)) if meta.is_none() => Some(format!("{{\"ttl\":{ttl}}}")),
            _ => None,
        };
        let params = match self {
            Call::List(_, p) => serde_json::to_string(p),
            Call::CallTool(p, _) => answerable(p, meta.is_some(), |p| (&mut p.input_responses, &mut p.request_state)),
            Call::ReadResource(p) => answerable(p, meta.is_some(), |p| (&mut p.input_responses, &mut p.request_state)),
            Call::GetPrompt(p) => answerable(p, meta.is_some(), |p| (&mut p.input_responses, &mut p.request_state)),
            Call::GetTask(p) => serde_json::to_string(p),
            Call::CancelTask(p) => serde_json::to_string(p),
            Call::TaskResult(p, _) => serde_json::to_string(p),
        }
        .expect("request parameters serialise");
        let mut out = serde_json::to_string(&Envelope { jsonrpc: "2.0", id, method, params: &Placeholder }).expect("serialises");
        // The envelope ends with the placeholder's `null}`: the parameters
        // (an object, so ending with `}`) go there, with `_meta` (or `task`)
        // added last.
        out.truncate(out.len() - "null}".len());
        match meta.map(|m| ("_meta", m)).or(task.as_deref().map(|t| ("task", t))) {
            Some((name, value)) => {
                out.push_str(&params[..params.len() - 1]);
                if params.len() > 2 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(name);
                out.push_str("\":");
                out.push_str(value);
                out.push_str("}}");
            }
            None => {
                out.push_str(&params);
                out.push('}');
            }
        }
        out
    }
}

/// Stands for the parameters in the envelope.
struct Placeholder;

impl Serialize for Placeholder {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_none()
    }
}

type Answers<'a> = (&'a mut Option<InputResponses>, &'a mut Option<String>);

/// Parameters that may carry answers: serialised without them for a
/// session-based server (taken out and put back).
fn answerable<P: Serialize>(params: &mut P, modern: bool, answers: impl Fn(&mut P) -> Answers<'_>) -> serde_json::Result<String> {
    if modern {
        return serde_json::to_string(params);
    }
    let (responses, state) = answers(params);
    let kept = (responses.take(), state.take());
    let out = serde_json::to_string(params);
    let (responses, state) = answers(params);
    (*responses, *state) = kept;
    out
}

/// A protocol version by name (rmcp keeps the constructor private; any
/// dated name deserialises).
pub fn protocol_version(name: &str) -> ProtocolVersion {
    serde_json::from_value(serde_json::Value::from(name)).unwrap_or_default()
}

/// Who we are to servers.
pub fn client_info() -> Implementation {
    Implementation::new("mcp_oauth", env!("CARGO_PKG_VERSION"))
}

/// The `_meta` every 2026-07-28 request carries, serialised: protocol
/// version, client information and the capabilities the application declares.
pub fn request_meta(version: &str, capabilities: &ClientCapabilities) -> String {
    let meta = RequestMetaObject::with_client_context(protocol_version(version), client_info(), capabilities.clone());
    serde_json::to_string(&meta).expect("request metadata serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn object(v: Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_modern_tool_call_carries_its_context_in_meta() {
        let input = InputRound {
            responses: Some([("confirm".to_owned(), json!({"action": "accept"}))].into_iter().collect()),
            request_state: Some("opaque \"state\"".into()),
        };
        let mut call = Call::call_tool("echo", object(json!({"text": "a \"quoted\" \u{e9}\n"})), input);
        let body: Value = serde_json::from_str(&call.body(42, Some(&request_meta("2026-07-28", &ClientCapabilities::default())))).unwrap();
        assert_eq!(
            body,
            json!({
                "jsonrpc": "2.0", "id": 42, "method": "tools/call",
                "params": {
                    "name": "echo", "arguments": {"text": "a \"quoted\" \u{e9}\n"},
                    "inputResponses": {"confirm": {"action": "accept"}},
                    "requestState": "opaque \"state\"",
                    "_meta": {
                        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                        "io.modelcontextprotocol/clientCapabilities": {},
                        "io.modelcontextprotocol/clientInfo": {"name": "mcp_oauth", "version": env!("CARGO_PKG_VERSION")}
                    }
                }
            })
        );
        // A session-based server gets neither _meta nor the 2026-07-28 fields.
        let legacy: Value = serde_json::from_str(&call.body(43, None)).unwrap();
        assert_eq!(legacy["params"], json!({"name": "echo", "arguments": {"text": "a \"quoted\" \u{e9}\n"}}));
    }

    #[test]
    fn a_tool_call_made_a_task_of_for_a_session_based_server() {
        let answers = InputRound {
            responses: Some([("elicitation/create".to_owned(), json!({"action": "decline"}))].into_iter().collect()),
            request_state: None,
        };
        let mut call = Call::call_tool("research", object(json!({"topic": "x"})), answers);
        call.as_task(300_000);
        let body: Value = serde_json::from_str(&call.body(7, None)).unwrap();
        assert_eq!(body["params"], json!({"name": "research", "arguments": {"topic": "x"}, "task": {"ttl": 300_000}}));
        // Task augmentation is the session-based revisions'; 2026-07-28 has the tasks extension.
        let modern: Value = serde_json::from_str(&call.body(8, Some("{}"))).unwrap();
        assert!(modern["params"].get("task").is_none(), "{modern}");
        let mut fetch = call.task_result("t-1");
        assert_eq!((fetch.method(), fetch.name()), ("tasks/result", Some("t-1")));
        assert!(fetch.input_responses().is_some_and(|a| a.contains_key("elicitation/create")), "the call's answers go with it");
        let body: Value = serde_json::from_str(&fetch.body(9, None)).unwrap();
        assert_eq!(body["params"], json!({"taskId": "t-1"}));
        let mut bare = Call::call_tool("noargs", JsonObject::new(), InputRound::default());
        bare.as_task(1);
        assert_eq!(serde_json::from_str::<Value>(&bare.body(1, None)).unwrap()["params"]["task"], json!({"ttl": 1}));
    }

    #[test]
    fn every_method_and_its_name_header() {
        let cases = [
            (Call::list(Listing::Resources, Some("c1".into())), "resources/list", None, json!({"cursor": "c1"})),
            (Call::list(Listing::ResourceTemplates, None), "resources/templates/list", None, json!({})),
            (Call::list(Listing::Prompts, None), "prompts/list", None, json!({})),
            (
                Call::read_resource("file:///a b", InputRound::default()),
                "resources/read",
                Some("file:///a b"),
                json!({"uri": "file:///a b"}),
            ),
            (
                Call::get_prompt("greet", object(json!({"who": "x"})), InputRound::default()),
                "prompts/get",
                Some("greet"),
                json!({"name": "greet", "arguments": {"who": "x"}}),
            ),
        ];
        let meta = request_meta("2026-07-28", &ClientCapabilities::default());
        for (mut call, method, name, params) in cases {
            assert_eq!(call.method(), method);
            assert_eq!(call.name(), name);
            let body: Value = serde_json::from_str(&call.body(1, None)).unwrap();
            assert_eq!(body["params"], params, "{method}");
            let modern: Value = serde_json::from_str(&call.body(2, Some(&meta))).unwrap();
            let mut expected = params.clone();
            expected["_meta"] = serde_json::from_str(&meta).unwrap();
            assert_eq!(modern["params"], expected, "{method}");
            assert_eq!(
                (modern["jsonrpc"].as_str(), modern["id"].as_i64(), modern["method"].as_str()),
                (Some("2.0"), Some(2), Some(method))
            );
        }
    }
}
