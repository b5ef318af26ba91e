//! Scores one digest the way a supervisor would notice problems, for the
//! evaluation harness (`examples/eval-digests.rs`) and the crate's digest
//! test: ungrounded numbers and names (the runtime checker, [`ground`]),
//! off-topic words, broken words, dangling and repeated sentences, and
//! whether the digest names what matters (top entity, top kind, peak,
//! severity).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use crate::facts::{Facts, number};
use crate::ground;
use crate::lexicon::{lexicon, name_parts};

/// Where Debian's `wamerican` package puts its word list.
pub const DEFAULT_DICTIONARY: &str = "/usr/share/dict/words";

/// Words after which a sentence cannot end.
const DANGLING: &[&str] = &[
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "and", "or", "but", "nor", "of",
    "with", "while", "which", "that", "who", "to", "at", "on", "in", "by", "for", "from", "as",
    "than", "between", "into", "per", "its", "their", "his", "her", "has", "have", "had", "very",
    "most", "more", "if", "because", "so", "then", "when", "where", "whether", "also", "not", "no",
    "this", "these", "those", "each", "every", "all", "some", "any", "about",
];

/// Shortest repeated run of words counted as a repetition.
const REPEAT_WORDS: usize = 5;

/// An English word list, lowercase.
#[derive(Debug, Clone, Default)]
pub struct Dictionary(HashSet<String>);

impl Dictionary {
    /// Reads a word list, one word a line (e.g. `/usr/share/dict/words`).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "reading the word list {}: {e} (install Debian's `wamerican`; scripts/setup.sh does it)",
                path.display()
            )
        })?;
        Ok(Self::from_words(text.lines()))
    }

    /// A dictionary of `words`.
    pub fn from_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        Self(
            words
                .into_iter()
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect(),
        )
    }

    /// Whether `word` (any case) is an English word; `'s` forms count when
    /// the stem does.
    pub fn contains(&self, word: &str) -> bool {
        let w = word.to_lowercase();
        self.0.contains(&w) || w.strip_suffix("'s").is_some_and(|s| self.0.contains(s))
    }
}

/// What is wrong with one digest, and what it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Score {
    /// Numbers, times and names not in the facts ([`ground::check`]).
    pub ungrounded: Vec<String>,
    /// Words neither in the facts, nor in the domain lexicon, nor English
    /// function words.
    pub off_topic: Vec<String>,
    /// Words in no English dictionary that are not fact values.
    pub broken: Vec<String>,
    /// Sentences that end on a word that cannot end one, or have fewer than
    /// two words.
    pub dangling: Vec<String>,
    /// Clauses said twice, or runs of five words said twice.
    pub repeated: Vec<String>,
    /// Names the top value of a key column (device, zone, camera).
    pub top_entity: bool,
    /// Names the most frequent kind (true when there is no kind column).
    pub top_kind: bool,
    /// States the first measure's peak value (true when there is none).
    pub peak: bool,
    /// States the severity word.
    pub severity: bool,
}

impl Score {
    /// No ungrounded, off-topic or broken word, no dangling or repeated
    /// sentence.
    pub fn clean(&self) -> bool {
        self.ungrounded.is_empty()
            && self.off_topic.is_empty()
            && self.broken.is_empty()
            && self.dangling.is_empty()
            && self.repeated.is_empty()
    }
}

/// Sentences of `text`: split at `.`, `!` or `?` followed by whitespace or
/// the end, and at line breaks; a `.` inside a number or name does not end
/// one.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let ends = match c {
            '\n' => true,
            '.' | '!' | '?' => chars.get(i + 1).is_none_or(|n| n.is_whitespace()),
            _ => false,
        };
        if c != '\n' {
            cur.push(c);
        }
        if ends {
            if !cur.trim().is_empty() {
                out.push(cur.trim().to_owned());
            }
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

fn norm(s: &str) -> String {
    ground::words(s)
        .iter()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Scores `text`, a digest of `facts` whose prompt listed `top` values per
/// column.
pub fn score(text: &str, facts: &Facts, top: usize, dict: &Dictionary) -> Score {
    let lex = lexicon();
    let g = facts.grounding(top);
    let mut s = Score {
        ungrounded: ground::check(text, &g).ungrounded,
        ..Score::default()
    };
    // Fact values and the words inside them (`bearing_wear` allows
    // "bearing" and "wear").
    let fact_words: BTreeSet<String> = g
        .names
        .iter()
        .flat_map(|n| name_parts(n).chain([n.to_lowercase()]))
        .collect();
    let words = ground::words(text);
    for w in &words {
        let lower = w.to_lowercase();
        let lower = lower.strip_suffix("'s").unwrap_or(&lower);
        let identifier = w
            .chars()
            .any(|c| !c.is_alphabetic() && c != '\'' && c != '-');
        if identifier || g.numbers.contains(*w) || g.names.contains(*w) {
            continue; // judged by the grounding check
        }
        if fact_words.contains(lower) {
            continue;
        }
        let parts: Vec<String> = name_parts(lower).collect();
        let known = |p: &String| lex.knows(p) || fact_words.contains(p);
        if !parts.iter().all(known) && !lex.knows(lower) {
            push_once(&mut s.off_topic, w);
        }
        if !dict.contains(lower) && !parts.iter().all(|p| dict.contains(p) || known(p)) {
            push_once(&mut s.broken, w);
        }
    }
    let mut clauses = BTreeSet::new();
    for sentence in sentences(text) {
        let ws = ground::words(&sentence);
        let last = ws.last().map(|w| w.to_lowercase()).unwrap_or_default();
        if ws.len() < 2 || DANGLING.contains(&last.as_str()) {
            s.dangling.push(sentence.clone());
        }
        for clause in sentence.split([',', ';']) {
            let c = norm(clause);
            if c.split(' ').count() >= 3 && !clauses.insert(c.clone()) {
                push_once(&mut s.repeated, &c);
            }
        }
    }
    let lowered: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    // Runs of REPEAT_WORDS words said before; overlapping runs merge into
    // one repetition.
    let mut seen = BTreeSet::new();
    let mut run: Option<(usize, usize)> = None;
    let mut runs = Vec::new();
    for (i, w) in lowered.windows(REPEAT_WORDS).enumerate() {
        if seen.insert(w.join(" ")) {
            continue;
        }
        run = match run {
            Some((start, end)) if i <= end => Some((start, i + REPEAT_WORDS)),
            Some(r) => {
                runs.push(r);
                Some((i, i + REPEAT_WORDS))
            }
            None => Some((i, i + REPEAT_WORDS)),
        };
    }
    runs.extend(run);
    for (start, end) in runs {
        let r = lowered[start..end].join(" ");
        if !s
            .repeated
            .iter()
            .any(|x| x.contains(&r) || r.contains(x.as_str()))
        {
            s.repeated.push(r);
        }
    }
    let has = |name: &str| words.contains(&name);
    s.top_entity = facts.keys.iter().all(|b| b.counts.is_empty())
        || facts
            .keys
            .iter()
            .filter_map(|b| b.top())
            .any(|t| has(&t.name));
    s.top_kind = facts
        .kinds
        .as_ref()
        .and_then(|k| k.top())
        .is_none_or(|t| has(&t.name));
    s.peak = facts
        .peaks
        .first()
        .is_none_or(|p| has(&number(p.value)) && has(&p.column));
    s.severity = lowered.iter().any(|w| w == facts.severity.as_str());
    s
}

fn push_once(list: &mut Vec<String>, w: &str) {
    if !list.iter().any(|x| x == w) {
        list.push(w.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Breakdown, Counted, Peak, Severity};

    fn facts() -> Facts {
        let counted = |name: &str, events| Counted {
            name: name.into(),
            events,
        };
        Facts {
            events: 14,
            first_ms: 0,
            last_ms: 60_000,
            kinds: Some(Breakdown {
                column: "kind".into(),
                counts: vec![counted("bearing_wear", 9), counted("jam", 5)],
                untracked: 0,
            }),
            keys: vec![Breakdown {
                column: "device".into(),
                counts: vec![counted("lathe-2", 11), counted("kiln-1", 3)],
                untracked: 0,
            }],
            peaks: vec![Peak {
                column: "vibration_rms".into(),
                value: 9.5,
                at_ms: 30_000,
                keys: vec![("device".into(), "lathe-2".into())],
            }],
            severity: Severity::Warning,
        }
    }

    fn dict() -> Dictionary {
        Dictionary::from_words(
            "the bus was stopped at which is with events and had most bearing wear highest \
             on severity warning check bearings mounts first"
                .split(' '),
        )
    }

    #[test]
    fn the_issue_examples_score_badly() {
        let s = score(
            "The bus was stopped at 00:00:30, which is lathe-2 with 11 events, and the bus \
             was stopped lathe-2 with 11 events. The bus was stopped at 00:00:30, which is.",
            &facts(),
            5,
            &dict(),
        );
        assert_eq!(s.off_topic, vec!["bus", "stopped"]);
        assert!(s.broken.is_empty(), "{:?}", s.broken);
        assert_eq!(
            s.dangling,
            vec!["The bus was stopped at 00:00:30, which is."]
        );
        assert!(
            s.repeated.contains(&"lathe-2 with 11 events".to_owned())
                || s.repeated.iter().any(|r| r.contains("the bus was stopped")),
            "{:?}",
            s.repeated
        );
        assert!(s.top_entity && !s.top_kind && !s.peak && !s.severity);
        let s = score(
            "The busiest device is lathe-2, while the other devices aredevs.",
            &facts(),
            5,
            &dict(),
        );
        assert!(s.broken.contains(&"aredevs".to_owned()), "{s:?}");
        assert!(s.off_topic.contains(&"aredevs".to_owned()), "{s:?}");
        let s = score(
            "The highest is. 9.5 on lathe-2, and 2.",
            &facts(),
            5,
            &dict(),
        );
        assert_eq!(s.ungrounded, vec!["2"]);
        assert_eq!(s.dangling, vec!["The highest is."]);
    }

    #[test]
    fn a_good_digest_is_clean_and_covers_everything() {
        let text = "Warning: 14 events, most on lathe-2 (11), mostly bearing_wear (9).\n\
                    The highest vibration_rms was 9.5 on lathe-2 at 00:00:30. \
                    Check the bearings and mounts first.";
        let s = score(text, &facts(), 5, &dict());
        assert!(s.clean(), "{s:?}");
        assert!(s.top_entity && s.top_kind && s.peak && s.severity, "{s:?}");
    }

    #[test]
    fn overlapping_repeated_runs_count_once() {
        let s = score(
            "lathe-2 had 11 events with bearing wear. Then lathe-2 had 11 events with bearing wear.",
            &facts(),
            5,
            &dict(),
        );
        assert_eq!(s.repeated, vec!["lathe-2 had 11 events with bearing wear"]);
    }

    #[test]
    fn sentences_split_at_full_stops_and_lines_not_inside_numbers() {
        assert_eq!(
            sentences("Peak 9.5 at 08:00. Check it.\nNext line"),
            vec!["Peak 9.5 at 08:00.", "Check it.", "Next line"]
        );
    }
}
