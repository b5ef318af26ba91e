//! MQTT topic filters (what a source subscribes to) and topic templates (where
//! a sink publishes each row).

use std::fmt::Write as _;

use arrow_cast::display::{ArrayFormatter, FormatOptions};
use sluice_core::arrow_array::RecordBatch;
use sluice_core::arrow_schema::{ArrowError, Schema};

/// Checks a subscription filter against the MQTT rules: `+` is a whole level,
/// `#` is a whole level and the last one, no NUL, at most 65535 bytes.
pub(crate) fn check_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() {
        return Err("topic filter must not be empty".into());
    }
    if filter.len() > 65_535 {
        return Err("topic filter is longer than 65535 bytes".into());
    }
    if filter.contains('\0') {
        return Err(format!(
            "topic filter `{}` contains a NUL character",
            filter.escape_debug()
        ));
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err(format!(
                "invalid topic filter `{filter}`: `#` must be a whole level and the last one, as in `a/b/#`"
            ));
        }
        if level.contains('+') && *level != "+" {
            return Err(format!(
                "invalid topic filter `{filter}`: `+` must be a whole level, as in `a/+/c`"
            ));
        }
    }
    Ok(())
}

/// One part of a topic template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(String),
}

/// A topic with `{column}` placeholders filled from each row. `{{` and `}}`
/// stand for literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicTemplate {
    parts: Vec<Part>,
}

impl TopicTemplate {
    pub(crate) fn parse(template: &str) -> Result<Self, String> {
        if template.is_empty() {
            return Err("topic must not be empty".into());
        }
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => {
                                return Err(format!(
                                    "unterminated placeholder in topic `{template}`: expected `{{column}}`"
                                ));
                            }
                            Some(ch) => name.push(ch),
                        }
                    }
                    if name.trim().is_empty() {
                        return Err(format!("empty placeholder `{{}}` in topic `{template}`"));
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Field(name.trim().to_owned()));
                }
                '}' => {
                    return Err(format!(
                        "unmatched `}}` in topic `{template}` (write `}}}}` for a literal brace)"
                    ));
                }
                '+' | '#' => {
                    return Err(format!(
                        "topic `{template}` contains the wildcard `{c}`, which is only valid in subscriptions"
                    ));
                }
                '\0' => return Err("topic contains a NUL character".into()),
                _ => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(Self { parts })
    }

    /// The column names the template refers to, in order of appearance.
    pub(crate) fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Whether the topic is the same for every row.
    pub(crate) fn is_static(&self) -> bool {
        self.fields().next().is_none()
    }

    /// The placeholders that name no column of `schema`.
    pub(crate) fn unknown_fields<'a>(&'a self, schema: &Schema) -> Vec<&'a str> {
        self.fields()
            .filter(|f| schema.index_of(f).is_err())
            .collect()
    }

    /// The topic of a template without placeholders.
    pub(crate) fn literal(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(l) => l.as_str(),
                Part::Field(_) => "",
            })
            .collect()
    }

    /// A renderer for the rows of `batch`.
    pub(crate) fn for_batch<'a>(
        &'a self,
        batch: &'a RecordBatch,
    ) -> Result<TopicRenderer<'a>, ArrowError> {
        let opts = FormatOptions::new().with_null("null");
        let mut formatters = Vec::new();
        for p in &self.parts {
            if let Part::Field(name) = p {
                let idx = batch.schema().index_of(name)?;
                formatters.push(ArrayFormatter::try_new(batch.column(idx).as_ref(), &opts)?);
            }
        }
        Ok(TopicRenderer {
            template: self,
            formatters,
            value: String::new(),
        })
    }
}

/// Fills a template from the rows of one batch.
pub(crate) struct TopicRenderer<'a> {
    template: &'a TopicTemplate,
    formatters: Vec<ArrayFormatter<'a>>,
    value: String,
}

impl TopicRenderer<'_> {
    /// The topic of row `row`. A value fills exactly one topic level: `/`, `+`,
    /// `#` and NUL in values become `_`.
    pub(crate) fn render(&mut self, row: usize) -> Result<String, ArrowError> {
        let mut topic = String::new();
        let mut next_field = 0;
        for p in &self.template.parts {
            match p {
                Part::Literal(l) => topic.push_str(l),
                Part::Field(_) => {
                    let Some(f) = self.formatters.get(next_field) else {
                        return Err(ArrowError::InvalidArgumentError(
                            "topic template and batch disagree on placeholders".into(),
                        ));
                    };
                    next_field += 1;
                    self.value.clear();
                    write!(self.value, "{}", f.value(row))
                        .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                    topic.extend(self.value.chars().map(|c| match c {
                        '/' | '+' | '#' | '\0' => '_',
                        c => c,
                    }));
                }
            }
        }
        Ok(topic)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_core::arrow_array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn accepts_valid_filters() {
        for f in [
            "a",
            "a/b",
            "a/+/c",
            "+",
            "#",
            "a/#",
            "+/+/#",
            "/a",
            "$share/g/a/+",
            "a//b",
        ] {
            check_filter(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn rejects_misplaced_wildcards() {
        for f in ["a/#/b", "a#", "a/b#", "a+/b", "a/+b", "#/a", ""] {
            assert!(check_filter(f).is_err(), "{f} should be rejected");
        }
    }

    #[test]
    fn parses_placeholders_and_escaped_braces() {
        let t = TopicTemplate::parse("plants/{plant}/{{raw}}/{ device }").unwrap();
        assert_eq!(t.fields().collect::<Vec<_>>(), vec!["plant", "device"]);
        assert!(!t.is_static());
        let s = TopicTemplate::parse("a/{{b}}").unwrap();
        assert!(s.is_static());
        assert_eq!(s.literal(), "a/{b}");
    }

    #[test]
    fn rejects_malformed_templates() {
        for (t, msg) in [
            ("a/{b", "unterminated"),
            ("a/b}", "unmatched"),
            ("a/{}", "empty placeholder"),
            ("a/+", "wildcard"),
            ("", "empty"),
        ] {
            let e = TopicTemplate::parse(t).unwrap_err();
            assert!(e.contains(msg), "{t}: {e}");
        }
    }

    #[test]
    fn renders_one_level_per_value_from_each_row() {
        let batch = RecordBatch::try_from_iter([
            (
                "device",
                Arc::new(StringArray::from(vec![Some("d1"), Some("a/b+#"), None])) as _,
            ),
            ("n", Arc::new(Int64Array::from(vec![1, 2, 3])) as _),
        ])
        .unwrap();
        let t = TopicTemplate::parse("x/{device}/{n}").unwrap();
        let mut r = t.for_batch(&batch).unwrap();
        let topics: Vec<String> = (0..3).map(|i| r.render(i).unwrap()).collect();
        assert_eq!(topics, vec!["x/d1/1", "x/a_b__/2", "x/null/3"]);
        assert_eq!(t.unknown_fields(&batch.schema()), Vec::<&str>::new());
        let bad = TopicTemplate::parse("{nope}/{n}").unwrap();
        assert_eq!(bad.unknown_fields(&batch.schema()), vec!["nope"]);
    }
}
