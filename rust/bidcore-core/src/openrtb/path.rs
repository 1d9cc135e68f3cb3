//! JSON paths for error messages (`imp[0].banner.format[1].w`).
//!
//! Only ever computed after something went wrong, so it favours simplicity over speed.

enum Frame {
    Object { key: Option<String>, awaiting_key: bool },
    Array { index: usize },
}

/// The path of the value that starts (or the key string that starts) at byte `offset` of `body`.
///
/// Walks the JSON from the start, keeping a stack of the containers it is inside. Tolerates
/// malformed input: whatever it has seen up to `offset` is what it reports.
#[cold]
pub fn path_at_offset(body: &[u8], offset: usize) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0usize;
    while i < offset.min(body.len()) {
        match body[i] {
            b'"' => {
                let start = i + 1;
                let end = string_end(body, start).unwrap_or(body.len());
                if end >= offset {
                    break;
                }
                if let Some(Frame::Object { key, awaiting_key }) = stack.last_mut() {
                    if *awaiting_key {
                        *key = Some(String::from_utf8_lossy(&body[start..end]).into_owned());
                        *awaiting_key = false;
                    }
                }
                i = end + 1;
                continue;
            }
            b'{' => stack.push(Frame::Object { key: None, awaiting_key: true }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { awaiting_key, .. }) => *awaiting_key = true,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    render(&stack)
}

fn string_end(body: &[u8], mut from: usize) -> Option<usize> {
    while from < body.len() {
        match body[from] {
            b'"' => return Some(from),
            b'\\' => from += 2,
            _ => from += 1,
        }
    }
    None
}

fn render(stack: &[Frame]) -> String {
    let mut path = String::new();
    for frame in stack {
        match frame {
            // An object waiting for its next key is where a key string starts: no key to name.
            Frame::Object { key: Some(key), awaiting_key: false } => push_key(&mut path, key),
            Frame::Object { .. } => {}
            Frame::Array { index } => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
        }
    }
    path
}

/// Appends `.key` (or `key` at the root) to a path.
pub fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// The path shown for the whole body.
pub const ROOT: &str = "$";

/// How a path reads in a message: the root has a name of its own.
pub fn display(path: &str) -> &str {
    if path.is_empty() {
        ROOT
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(body: &str, needle: &str) -> String {
        let offset = body.find(needle).expect("needle in body");
        path_at_offset(body.as_bytes(), offset)
    }

    #[test]
    fn names_nested_keys_and_indices() {
        let body = r#"{"id":"x","imp":[{"id":"1"},{"banner":{"format":[{"w":1},{"w":2}]}}]}"#;
        assert_eq!(at(body, r#"{"w":2}"#), "imp[1].banner.format[1]");
        assert_eq!(at(body, r#"{"banner""#), "imp[1]");
        assert_eq!(at(body, r#"[{"id""#), "imp");
    }

    #[test]
    fn the_root_value_has_the_empty_path() {
        assert_eq!(path_at_offset(b"{}", 0), "");
        assert_eq!(display(""), "$");
    }

    #[test]
    fn strings_with_brackets_and_escapes_do_not_confuse_it() {
        let body = r#"{"a\"[":"]}{,","b":[1,{"c":"x"}]}"#;
        assert_eq!(at(body, r#"{"c""#), "b[1]");
    }

    #[test]
    fn a_key_string_reports_its_object() {
        let body = r#"{"site":{"page":"x"}}"#;
        assert_eq!(at(body, r#""page""#), "site");
        let body = r#"{"site":{"id":"1","page":"x"}}"#;
        assert_eq!(at(body, r#""page""#), "site");
    }
}
