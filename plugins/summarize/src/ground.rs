//! The checker run on every generated summary: each number, time and
//! identifier it states must be one of the facts, no number may be spelled
//! out, and the top value of each key column must be mentioned.

use crate::facts::Grounding;

/// Number words a summary must not use: the facts are stated in digits, so a
/// spelled-out number can only be invented.
const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "hundreds",
    "thousand",
    "thousands",
    "million",
    "millions",
    "dozen",
    "dozens",
    "percent",
    "twice",
    "thrice",
    "single",
    "double",
    "triple",
    "half",
    "quarter",
];

/// What is wrong with a summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Numbers, times or identifiers not found in the facts.
    pub ungrounded: Vec<String>,
    /// Required names the summary does not mention.
    pub missing: Vec<String>,
}

impl Verdict {
    /// Nothing wrong.
    pub fn is_ok(&self) -> bool {
        self.ungrounded.is_empty() && self.missing.is_empty()
    }

    /// Bounded reason label for the fallback counter.
    pub fn reason(&self) -> &'static str {
        if !self.ungrounded.is_empty() {
            "ungrounded"
        } else {
            "missing_top"
        }
    }
}

/// The words of `text` that carry meaning: split on spaces and punctuation
/// that never occurs inside a name, then stripped of sentence punctuation.
pub fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| {
        c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '!' | '?' | '"' | '[' | ']')
    })
    .map(|w| {
        let w = w.trim_matches(|c: char| matches!(c, '.' | ':' | '\'' | '`' | '*'));
        w.strip_suffix("'s").unwrap_or(w)
    })
    .filter(|w| !w.is_empty())
    .collect()
}

fn is_identifier_like(w: &str) -> bool {
    w.chars().any(|c| c.is_ascii_digit())
        || w.chars()
            .any(|c| matches!(c, '-' | '_' | '/' | ':' | '.' | '#' | '%'))
        || !w.is_ascii()
}

/// Checks `summary` against what the facts allow.
pub fn check(summary: &str, g: &Grounding) -> Verdict {
    let words = words(summary);
    let mut v = Verdict::default();
    for w in &words {
        let grounded = g.numbers.contains(*w) || g.names.contains(*w);
        let bad = if is_identifier_like(w) {
            !grounded
        } else {
            !grounded && NUMBER_WORDS.contains(&w.to_ascii_lowercase().as_str())
        };
        if bad && !v.ungrounded.iter().any(|u| u == w) {
            v.ungrounded.push((*w).to_owned());
        }
    }
    for r in &g.required {
        if !words.contains(&r.as_str()) {
            v.missing.push(r.clone());
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grounding() -> Grounding {
        let mut g = Grounding::default();
        g.numbers
            .extend(["12", "3", "08:03:12", "08:03", "0.97"].map(String::from));
        g.names
            .extend(["press-7", "checkout-2", "anomaly_score"].map(String::from));
        g.required
            .extend(["press-7", "checkout-2"].map(String::from));
        g
    }

    #[test]
    fn a_summary_of_facts_only_passes() {
        let s = "Press press-7's 12 anomalies peaked at 0.97 (08:03:12); checkout-2 saw 3.";
        assert_eq!(check(s, &grounding()), Verdict::default());
    }

    #[test]
    fn invented_numbers_and_names_are_reported_once() {
        let s = "press-7 had 13 events, defect rate 0.95%, press-9 and 13 more at checkout-2.";
        let v = check(s, &grounding());
        assert_eq!(v.ungrounded, vec!["13", "0.95%", "press-9"]);
        assert!(v.missing.is_empty());
        assert_eq!(v.reason(), "ungrounded");
    }

    #[test]
    fn spelled_out_numbers_are_ungrounded() {
        let v = check("Twelve events on press-7 at checkout-2.", &grounding());
        assert_eq!(v.ungrounded, vec!["Twelve"]);
    }

    #[test]
    fn a_summary_without_the_top_names_is_reported() {
        let v = check("Things happened on press-7.", &grounding());
        assert_eq!(v.missing, vec!["checkout-2"]);
        assert_eq!(v.reason(), "missing_top");
    }

    #[test]
    fn times_are_checked_like_numbers() {
        let v = check("press-7 at checkout-2 from 08:03 to 09:00.", &grounding());
        assert_eq!(v.ungrounded, vec!["09:00"]);
    }
}
