//! A GBNF grammar built per prompt: free words are letters only, so every
//! digit, time and identifier in the answer has to be one of the facts'
//! literals, and the top value of each key column has to appear.

use crate::facts::Grounding;

/// Most words around each required name in the first sentence, and in the
/// optional second sentence: keeps every answer short and finite even when
/// the model rambles.
const AROUND: usize = 8;
const SECOND: usize = 18;

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

/// The grammar for an answer about facts with this grounding.
pub fn build(g: &Grounding) -> String {
    let mut facts: Vec<String> = g
        .numbers
        .iter()
        .chain(&g.names)
        .filter(|s| !s.is_empty())
        .map(|s| literal(s))
        .collect();
    facts.sort();
    facts.dedup();
    let mut out = String::new();
    // Items are always separated by a gap, so a fact literal can never be
    // glued to a free word into a new identifier. Gaps hold no full stop:
    // sentences end only where the root rule says, which bounds the answer.
    let mut first = format!("(item gap){{0,{AROUND}}}");
    for (i, r) in g.required.iter().enumerate() {
        if i > 0 {
            first.push_str(&format!(" (gap item){{0,{AROUND}}} gap"));
        }
        first.push_str(&format!(" {}", literal(r)));
    }
    if g.required.is_empty() {
        first.push_str(" item");
    }
    out.push_str(&format!(
        "root ::= {first} (gap item){{0,{AROUND}}} \".\" (\" \" sentence)?\n"
    ));
    out.push_str(&format!(
        "sentence ::= item (gap item){{0,{SECOND}}} \".\"\n"
    ));
    out.push_str("gap ::= \" \" | \", \" | \"; \"\n");
    out.push_str("item ::= word | fact\n");
    out.push_str("word ::= [a-zA-Z]+ (\"'\" [a-z]+)?\n");
    if facts.is_empty() {
        out.push_str("fact ::= word\n");
    } else {
        out.push_str(&format!("fact ::= {}\n", facts.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grounding() -> Grounding {
        let mut g = Grounding::default();
        g.numbers.extend(["12".to_owned(), "08:03:12".to_owned()]);
        g.names
            .extend(["press-7".to_owned(), "say \"hi\"\\".to_owned()]);
        g.required.push("press-7".into());
        g
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }

    #[test]
    fn facts_are_the_only_source_of_digits() {
        let gbnf = build(&grounding());
        assert!(
            gbnf.contains("fact ::= \"08:03:12\" | \"12\" | \"press-7\" | \"say \\\"hi\\\"\\\\\""),
            "{gbnf}"
        );
        assert!(gbnf.contains("word ::= [a-zA-Z]+"), "{gbnf}");
        assert!(!gbnf.contains("[0-9]"), "{gbnf}");
    }

    #[test]
    fn required_names_are_part_of_the_root_rule() {
        let gbnf = build(&grounding());
        let root = gbnf.lines().next().unwrap();
        assert_eq!(
            root,
            "root ::= (item gap){0,8} \"press-7\" (gap item){0,8} \".\" (\" \" sentence)?"
        );
    }
}
