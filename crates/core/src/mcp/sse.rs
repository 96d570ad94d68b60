//! Server-sent events (WHATWG HTML §9.2), read as they arrive: a stream may
//! carry the response after notifications, stay open after it, or close
//! before it (to be resumed with `Last-Event-ID`).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub data: String,
    /// The stream's last event id when this event was dispatched.
    pub id: Option<String>,
}

/// An incremental parser: feed it bytes as they come.
#[derive(Debug, Default)]
pub struct Reader {
    line: Vec<u8>,
    data: Option<String>,
    /// Skip a line feed that completes a CR line ending across two chunks.
    after_cr: bool,
    /// The last event id seen (it persists across events, per the standard).
    pub last_event_id: Option<String>,
    /// The reconnection delay the server asked for, in milliseconds.
    pub retry_ms: Option<u64>,
}

impl Reader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut events);
                }
                b'\n' => self.end_line(&mut events),
                _ => self.line.push(b),
            }
        }
        events
    }

    /// The event left when the stream ends without a blank line.
    pub fn finish(&mut self) -> Option<Event> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut events);
        }
        self.dispatch(&mut events);
        events.pop()
    }

    fn end_line(&mut self, events: &mut Vec<Event>) {
        let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()),
            None => (line, String::new()),
        };
        match field.as_str() {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(&value);
                }
                None => self.data = Some(value),
            },
            "id" if !value.contains('\0') => self.last_event_id = Some(value),
            "retry" => {
                if let Ok(ms) = value.parse() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, events: &mut Vec<Event>) {
        if let Some(data) = self.data.take() {
            events.push(Event { data, id: self.last_event_id.clone() });
        }
    }
}

/// The `data` of every event of a complete body.
pub fn data_of(body: &[u8]) -> Vec<String> {
    let mut reader = Reader::new();
    let mut events = reader.feed(body);
    events.extend(reader.finish());
    events.into_iter().map(|e| e.data).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_in_one_piece() {
        let body = b"event: message\ndata: {\"a\":1}\n\n: comment\ndata: {\"b\":\ndata: 2}\r\n\r\nid: 3\ndata:x";
        assert_eq!(data_of(body), vec!["{\"a\":1}", "{\"b\":\n2}", "x"]);
        assert!(data_of(b"").is_empty());
    }

    #[test]
    fn events_split_anywhere_give_the_same_result() {
        let body = b"id: e1\nretry: 500\ndata: \n\nid: e2\r\ndata: {\"x\":1}\r\n\r\n";
        for cut in 0..body.len() {
            let mut reader = Reader::new();
            let mut events = reader.feed(&body[..cut]);
            events.extend(reader.feed(&body[cut..]));
            let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, vec!["", "{\"x\":1}"], "cut at {cut}");
            assert_eq!(reader.last_event_id.as_deref(), Some("e2"));
            assert_eq!(reader.retry_ms, Some(500));
        }
    }
}
