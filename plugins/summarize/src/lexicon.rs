//! The words a digest may use besides the facts' own names and values:
//! English function words and a small domain lexicon (`lexicon/*.txt`), and
//! what common event kinds mean for a supervisor (`lexicon/kinds.tsv`). The
//! grammar builds sentences from them and the evaluation harness counts any
//! other word as off-topic.

use std::collections::BTreeSet;
use std::sync::OnceLock;

const FUNCTION: &str = include_str!("../lexicon/function.txt");
const DOMAIN: &str = include_str!("../lexicon/domain.txt");
const KINDS: &str = include_str!("../lexicon/kinds.tsv");

/// Likely cause and first check for one family of event kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindAdvice {
    /// Words of a kind name (or prefixes of them) that select this row.
    pub words: Vec<&'static str>,
    /// Likely cause, e.g. `worn or loose bearings`.
    pub cause: &'static str,
    /// What to check first, e.g. `the bearings and mounts`.
    pub check: &'static str,
}

/// The word lists, parsed once.
#[derive(Debug)]
pub struct Lexicon {
    /// English function words.
    pub function: BTreeSet<&'static str>,
    /// Domain words.
    pub domain: BTreeSet<&'static str>,
    /// The kind table, in file order.
    pub kinds: Vec<KindAdvice>,
}

fn lines(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The lexicon compiled into the crate.
pub fn lexicon() -> &'static Lexicon {
    static LEX: OnceLock<Lexicon> = OnceLock::new();
    LEX.get_or_init(|| Lexicon {
        function: lines(FUNCTION).collect(),
        domain: lines(DOMAIN).collect(),
        kinds: lines(KINDS)
            .filter_map(|l| {
                let mut cols = l.split('\t');
                let words = cols.next()?.split('|').collect();
                Some(KindAdvice {
                    words,
                    cause: cols.next()?,
                    check: cols.next()?,
                })
            })
            .collect(),
    })
}

/// The parts of a name: split at `_`, `-`, `.`, `/` and spaces, lowercase.
pub fn name_parts(name: &str) -> impl Iterator<Item = String> + '_ {
    name.split(['_', '-', '.', '/', ' '])
        .filter(|p| !p.is_empty())
        .map(str::to_ascii_lowercase)
}

impl Lexicon {
    /// Whether `word` (any case) is a function or domain word.
    pub fn knows(&self, word: &str) -> bool {
        let w = word.to_ascii_lowercase();
        self.function.contains(w.as_str()) || self.domain.contains(w.as_str())
    }

    /// What an event kind likely means, if the table knows it.
    pub fn advice(&self, kind: &str) -> Option<&KindAdvice> {
        let parts: Vec<String> = name_parts(kind).collect();
        self.kinds.iter().find(|a| {
            a.words
                .iter()
                .any(|w| parts.iter().any(|p| p == w || p.starts_with(w)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_of_the_kind_table_is_in_the_lexicon() {
        let lex = lexicon();
        assert!(lex.kinds.len() >= 10);
        for a in &lex.kinds {
            for w in a.cause.split(' ').chain(a.check.split(' ')) {
                assert!(lex.knows(w), "`{w}` of {a:?}");
            }
        }
    }

    #[test]
    fn kinds_match_by_word_or_prefix() {
        let lex = lexicon();
        let check = |k: &str| lex.advice(k).map(|a| a.check);
        assert_eq!(
            check("temperature_anomaly"),
            Some("cooling and ventilation")
        );
        assert_eq!(check("Vibration-High"), Some("the bearings and mounts"));
        assert_eq!(check("item_not_scanned"), Some("the till footage"));
        assert_eq!(check("mystery"), None);
    }

    #[test]
    fn domain_and_function_words_do_not_overlap() {
        let lex = lexicon();
        let both: Vec<_> = lex.domain.intersection(&lex.function).collect();
        assert!(both.is_empty(), "{both:?}");
        assert!(lex.knows("Highest") && lex.knows("the") && !lex.knows("bus"));
    }
}
