//! The chat-completions exchange: what is sent (the local digest and the
//! compact facts, never events) and what counts as an answer.

use serde_json::{Value, json};

/// Default system message of the escalation.
pub const DEFAULT_SYSTEM: &str = "You assist the shift supervisor of a factory or a store. \
An edge gateway summarised the last window of events and sends you its digest and the facts \
it was written from. Say in two or three sentences what stands out, what the likely cause is \
and what to check first. Use only the facts.";

/// The request body: OpenAI's `/v1/chat/completions` shape, not streamed.
pub fn request(
    model: Option<&str>,
    system: &str,
    digest: &str,
    facts: &str,
    max_tokens: usize,
) -> Vec<u8> {
    let user = format!("Digest from the gateway:\n{digest}\n\nFacts:\n{facts}");
    let mut body = json!({
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": false,
    });
    if let (Some(m), Some(obj)) = (model, body.as_object_mut()) {
        obj.insert("model".into(), Value::String(m.to_owned()));
    }
    body.to_string().into_bytes()
}

/// Why a response body is not an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Not JSON.
    #[error("the response is not JSON: {0}")]
    NotJson(String),
    /// JSON without `choices[0].message.content` as text.
    #[error("the response has no `choices[0].message.content` text")]
    NoContent,
    /// The content is empty or only whitespace.
    #[error("the answer is empty")]
    Empty,
}

/// The answer text of a chat-completions response, trimmed and with
/// control characters other than line breaks removed.
pub fn answer(body: &[u8]) -> Result<String, AnswerError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| AnswerError::NotJson(e.to_string()))?;
    let content = v
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or(AnswerError::NoContent)?;
    let text: String = content
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Err(AnswerError::Empty);
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_holds_the_digest_and_facts_and_the_model_only_when_named() {
        let body = request(None, "sys", "Warning: 3 events.", "3 events", 64);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v.get("model").is_none());
        assert_eq!(v["max_tokens"], 64);
        assert_eq!(v["stream"], false);
        let user = v["messages"][1]["content"].as_str().unwrap();
        assert!(user.contains("Warning: 3 events.") && user.ends_with("Facts:\n3 events"));
        let v: Value = serde_json::from_slice(&request(Some("big"), "sys", "d", "f", 64)).unwrap();
        assert_eq!(v["model"], "big");
    }

    #[test]
    fn an_answer_is_the_first_choice_text() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":"  Check lathe-2.\u0007\n"}}]}"#;
        assert_eq!(answer(body).unwrap(), "Check lathe-2.");
    }

    #[test]
    fn garbage_is_not_an_answer() {
        assert!(matches!(
            answer(b"<html>oops"),
            Err(AnswerError::NotJson(_))
        ));
        assert_eq!(answer(br#"{"choices":[]}"#), Err(AnswerError::NoContent));
        assert_eq!(
            answer(br#"{"choices":[{"message":{"content":42}}]}"#),
            Err(AnswerError::NoContent)
        );
        assert_eq!(
            answer(br#"{"choices":[{"message":{"content":" \n "}}]}"#),
            Err(AnswerError::Empty)
        );
    }
}
