//! What the extension asks of a server, in rmcp's request types: the
//! parameters of each method, the per-request `_meta` of 2026-07-28, and the
//! JSON-RPC envelope around them.

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, GetPromptRequestParams, Implementation, InputResponses, JsonObject,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, RequestMetaObject,
};
use serde::Serialize;

/// A list a server may split into pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Tools,
    Resources,
    ResourceTemplates,
    Prompts,
}

impl Listing {
    pub fn method(self) -> &'static str {
        match self {
            Listing::Tools => "tools/list",
            Listing::Resources => "resources/list",
            Listing::ResourceTemplates => "resources/templates/list",
            Listing::Prompts => "prompts/list",
        }
    }

    /// The result's field that holds the page's items.
    pub fn field(self) -> &'static str {
        match self {
            Listing::Tools => "tools",
            Listing::Resources => "resources",
            Listing::ResourceTemplates => "resourceTemplates",
            Listing::Prompts => "prompts",
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
    CallTool(CallToolRequestParams),
    ReadResource(ReadResourceRequestParams),
    GetPrompt(GetPromptRequestParams),
}

#[derive(Serialize)]
struct Envelope<'a, P> {
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
        Call::CallTool(params)
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

    pub fn method(&self) -> &'static str {
        match self {
            Call::List(listing, _) => listing.method(),
            Call::CallTool(_) => "tools/call",
            Call::ReadResource(_) => "resources/read",
            Call::GetPrompt(_) => "prompts/get",
        }
    }

    /// What `Mcp-Name` carries: the tool's or prompt's name, the resource's URI.
    pub fn name(&self) -> Option<&str> {
        match self {
            Call::List(..) => None,
            Call::CallTool(p) => Some(&p.name),
            Call::ReadResource(p) => Some(&p.uri),
            Call::GetPrompt(p) => Some(&p.name),
        }
    }

    /// The tool's arguments (for its `Mcp-Param-*` headers).
    pub fn tool_arguments(&self) -> Option<&JsonObject> {
        match self {
            Call::CallTool(p) => p.arguments.as_ref(),
            _ => None,
        }
    }

    /// The answers this request carries for a session-based server's
    /// mid-request questions.
    pub fn input_responses(&self) -> Option<&InputResponses> {
        match self {
            Call::List(..) => None,
            Call::CallTool(p) => p.input_responses.as_ref(),
            Call::ReadResource(p) => p.input_responses.as_ref(),
            Call::GetPrompt(p) => p.input_responses.as_ref(),
        }
    }

    /// The JSON-RPC request, with `meta` as its `_meta` (2026-07-28) or none
    /// (session-based revisions, which do not know `inputResponses` either).
    pub fn body(&mut self, id: i64, meta: Option<RequestMetaObject>) -> String {
        let method = self.method();
        fn envelope<P: Serialize>(id: i64, method: &str, params: &P) -> String {
            serde_json::to_string(&Envelope { jsonrpc: "2.0", id, method, params }).expect("request parameters serialise")
        }
        // The answers are taken out for a session-based server and put back.
        macro_rules! answerable {
            ($p:expr) => {{
                let modern = meta.is_some();
                $p.meta = meta;
                if modern {
                    envelope(id, method, $p)
                } else {
                    let kept = ($p.input_responses.take(), $p.request_state.take());
                    let body = envelope(id, method, $p);
                    ($p.input_responses, $p.request_state) = kept;
                    body
                }
            }};
        }
        match self {
            Call::List(_, p) => {
                p.meta = meta;
                envelope(id, method, p)
            }
            Call::CallTool(p) => answerable!(p),
            Call::ReadResource(p) => answerable!(p),
            Call::GetPrompt(p) => answerable!(p),
        }
    }
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

/// The `_meta` every 2026-07-28 request carries: protocol version, client
/// information and the capabilities the application declares.
pub fn request_meta(version: &str, capabilities: &ClientCapabilities) -> RequestMetaObject {
    RequestMetaObject::with_client_context(protocol_version(version), client_info(), capabilities.clone())
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
        let body: Value = serde_json::from_str(&call.body(42, Some(request_meta("2026-07-28", &ClientCapabilities::default())))).unwrap();
        assert_eq!(body, json!({
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
        }));
        // A session-based server gets neither _meta nor the 2026-07-28 fields.
        let legacy: Value = serde_json::from_str(&call.body(43, None)).unwrap();
        assert_eq!(legacy["params"], json!({"name": "echo", "arguments": {"text": "a \"quoted\" \u{e9}\n"}}));
    }

    #[test]
    fn every_method_and_its_name_header() {
        let cases = [
            (Call::list(Listing::Resources, Some("c1".into())), "resources/list", None, json!({"cursor": "c1"})),
            (Call::list(Listing::ResourceTemplates, None), "resources/templates/list", None, json!({})),
            (Call::list(Listing::Prompts, None), "prompts/list", None, json!({})),
            (Call::read_resource("file:///a b", InputRound::default()), "resources/read", Some("file:///a b"), json!({"uri": "file:///a b"})),
            (
                Call::get_prompt("greet", object(json!({"who": "x"})), InputRound::default()),
                "prompts/get",
                Some("greet"),
                json!({"name": "greet", "arguments": {"who": "x"}}),
            ),
        ];
        for (mut call, method, name, params) in cases {
            assert_eq!(call.method(), method);
            assert_eq!(call.name(), name);
            let body: Value = serde_json::from_str(&call.body(1, None)).unwrap();
            assert_eq!(body["params"], params, "{method}");
        }
    }
}
