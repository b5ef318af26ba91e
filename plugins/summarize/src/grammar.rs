//! GBNF helpers. The grammar of an assessment is built by
//! [`crate::plan::Plan::grammar`]: whole sentences with the facts in place,
//! so no free word, digit or name can be generated.

/// Quotes `s` as a GBNF string literal.
pub fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                // Unreachable for collected names (control characters are
                // refused at collection); escaped anyway so the grammar
                // always parses.
                out.push_str(&format!("\\x{:02X}", u32::from(c) & 0xFF));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }
}
