//! What a digest says: a headline written in Rust, and the sentences the
//! model may choose from for the assessment under it.
//!
//! Every sentence the model can write is one of a few shapes with the facts
//! already in place ("The highest temperature was 118.2 on kiln-2 at
//! 06:03:12."), so a value always follows its own name, every word is a fact,
//! a domain word or a function word, and every sentence ends on a word that
//! can end one. The model decides what stands out (which peak, which share,
//! which kind to act on) and where to start; the grammar
//! ([`Plan::grammar`]) admits nothing else.

use crate::facts::{Breakdown, Counted, Facts, Peak, number, time};
use crate::grammar::literal;
use crate::lexicon::lexicon;

/// Most values per column the sentences may name.
const NAMED: usize = 3;
/// Kinds whose check the model may pick.
const CHECKED_KINDS: usize = 2;

fn events(n: u64) -> String {
    if n == 1 {
        "1 event".into()
    } else {
        format!("{n} events")
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Columns that name an area, said last in "on press-3 in line-2".
fn is_area(column: &str) -> bool {
    let c = column.to_ascii_lowercase();
    ["zone", "area", "line", "aisle", "site", "hall", "cell"]
        .iter()
        .any(|a| c.contains(a))
}

/// "lathe-12 in cell-b": the key values of a peak's row, areas last, each
/// value once (a camera named like its zone is not said twice).
pub fn place(p: &Peak) -> String {
    let mut keys: Vec<&(String, String)> = p.keys.iter().collect();
    keys.sort_by_key(|(c, _)| is_area(c));
    let mut names: Vec<&str> = Vec::new();
    for (_, v) in keys {
        if !names.contains(&v.as_str()) {
            names.push(v);
        }
    }
    names.join(" in ")
}

/// " on lathe-12 in cell-b", " in pharmacy" (only areas), or nothing.
pub fn on_place(p: &Peak) -> String {
    let at = place(p);
    if at.is_empty() {
        String::new()
    } else if p.keys.iter().all(|(c, _)| is_area(c)) {
        format!(" in {at}")
    } else {
        format!(" on {at}")
    }
}

/// The first line of every digest: severity, count, time span, top kind and
/// top value of each key column. Deterministic; the model never writes it.
pub fn headline(f: &Facts) -> String {
    let span = if f.first_ms / 1000 == f.last_ms / 1000 {
        format!("at {} UTC", time::clock(f.first_ms))
    } else {
        format!(
            "between {} and {} UTC",
            time::clock(f.first_ms),
            time::clock(f.last_ms)
        )
    };
    let mut s = format!(
        "{}: {} {span}",
        capitalised(f.severity.as_str()),
        events(f.events)
    );
    let tops = f
        .kinds
        .iter()
        .map(|k| (k, "kind"))
        .chain(f.keys.iter().map(|k| (k, k.column.as_str())));
    let mut parts = Vec::new();
    for (b, label) in tops {
        if let Some(t) = b.top() {
            parts.push(format!("top {label} {} ({})", t.name, t.events));
        }
    }
    if !parts.is_empty() {
        s.push_str("; ");
        s.push_str(&parts.join(", "));
    }
    s.push('.');
    s
}

/// The sentences an assessment may use, per role, first choice first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// "The highest <measure> was <value> on <place> at <time>."
    pub peaks: Vec<String>,
    /// "<value> had <n> of the <total> events."
    pub shares: Vec<String>,
    /// "<kind> followed with <n> events."
    pub next: Vec<String>,
    /// "Check <what> first, as <kind> likely means <cause>."
    pub checks: Vec<String>,
    /// "Start with <value>."
    pub starts: Vec<String>,
}

fn named(b: &Breakdown, top: usize) -> &[Counted] {
    &b.counts[..b.counts.len().min(top).min(NAMED)]
}

impl Plan {
    /// The sentences for `facts`, naming at most `top` values per column.
    pub fn new(f: &Facts, top: usize) -> Self {
        let lex = lexicon();
        let mut p = Plan::default();
        for pk in &f.peaks {
            let on = on_place(pk);
            p.peaks.push(format!(
                "The highest {} was {}{on} at {}.",
                pk.column,
                number(pk.value),
                time::clock(pk.at_ms)
            ));
        }
        if f.events > 1 {
            for b in &f.keys {
                for c in named(b, top) {
                    p.shares.push(format!(
                        "{} had {} of the {}.",
                        c.name,
                        c.events,
                        events(f.events)
                    ));
                }
            }
        }
        if let Some(k) = &f.kinds {
            for c in named(k, top).iter().skip(1) {
                p.next
                    .push(format!("{} followed with {}.", c.name, events(c.events)));
            }
            for c in k.counts.iter().take(top.min(CHECKED_KINDS)) {
                p.checks.push(match lex.advice(&c.name) {
                    Some(a) => format!(
                        "Check {} first, as {} likely means {}.",
                        a.check, c.name, a.cause
                    ),
                    None => format!("Check what caused {} first.", c.name),
                });
            }
        }
        let mut places: Vec<&str> = Vec::new();
        for b in &f.keys {
            places.extend(named(b, top).iter().take(2).map(|c| c.name.as_str()));
        }
        for pk in &f.peaks {
            places.extend(
                pk.keys
                    .iter()
                    .find(|(c, _)| !is_area(c))
                    .map(|(_, v)| v.as_str()),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        places.retain(|v| seen.insert(*v));
        if p.checks.is_empty() {
            // No kind column: what to check is where the events are.
            p.checks = places.iter().map(|v| format!("Check {v} first.")).collect();
        } else {
            p.starts = places.iter().map(|v| format!("Start with {v}.")).collect();
        }
        if p.checks.is_empty() {
            p.checks.push("Check the latest events first.".into());
        }
        p
    }

    /// The deterministic assessment used when the model's answer cannot be:
    /// the first peak (or share), then the check for the top kind.
    pub fn template(&self) -> String {
        let lead = self
            .peaks
            .first()
            .or(self.shares.first())
            .or(self.next.first());
        let mut s: Vec<&str> = lead.map(String::as_str).into_iter().collect();
        s.extend(self.checks.first().map(String::as_str));
        s.join(" ")
    }

    /// GBNF for an assessment: a lead (the first measure's peak, optionally
    /// followed by a share; without measures a share, optionally followed by
    /// the next kind), then a check, then optionally where to start.
    ///
    /// The first measure's peak always leads: the configuration lists the
    /// measure that matters most first, and left free to choose among the
    /// peaks, the model named it in only 44 of 64 harness digests. Letting
    /// it add a second peak made answers 19 tokens longer on average and cut
    /// two of them off at `max_tokens`.
    pub fn grammar(&self) -> String {
        let mut rules = Vec::new();
        let mut rule = |name: &str, alts: &[String]| {
            if alts.is_empty() {
                return false;
            }
            let body: Vec<String> = alts.iter().map(|a| literal(a)).collect();
            rules.push(format!("{name} ::= {}", body.join(" | ")));
            true
        };
        let (peak, share, next) = (
            rule("peak", &self.peaks[..self.peaks.len().min(1)]),
            rule("share", &self.shares),
            rule("next", &self.next),
        );
        rule("check", &self.checks);
        let start = rule("start", &self.starts);
        let lead = if peak {
            if share {
                "peak \" \" (share \" \")?".into()
            } else {
                "peak \" \"".into()
            }
        } else if share && next {
            "share \" \" (next \" \")?".into()
        } else if share {
            "share \" \"".into()
        } else if next {
            "next \" \"".into()
        } else {
            String::new()
        };
        let lead = if lead.is_empty() {
            lead
        } else {
            format!("({lead}) ")
        };
        let tail = if start { " (\" \" start)?" } else { "" };
        let mut out = format!("root ::= {lead}check{tail}\n");
        for r in rules {
            out.push_str(&r);
            out.push('\n');
        }
        out
    }
}

/// The whole digest: the headline, then the assessment.
pub fn digest(f: &Facts, assessment: &str) -> String {
    let a = assessment.trim();
    if a.is_empty() {
        headline(f)
    } else {
        format!("{}\n{a}", headline(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Severity;

    fn counted(name: &str, events: u64) -> Counted {
        Counted {
            name: name.into(),
            events,
        }
    }

    fn facts() -> Facts {
        Facts {
            events: 9,
            first_ms: 1_709_280_000_000,
            last_ms: 1_709_280_123_000,
            kinds: Some(Breakdown {
                column: "alert".into(),
                counts: vec![counted("item_not_scanned", 6), counted("oddity", 3)],
                untracked: 0,
            }),
            keys: vec![
                Breakdown {
                    column: "zone".into(),
                    counts: vec![counted("checkout-2", 6), counted("exit-1", 3)],
                    untracked: 0,
                },
                Breakdown {
                    column: "camera".into(),
                    counts: vec![counted("cam-6", 9)],
                    untracked: 0,
                },
            ],
            peaks: vec![Peak {
                column: "dwell_s".into(),
                value: 41.5,
                at_ms: 1_709_280_100_000,
                keys: vec![
                    ("zone".into(), "exit-1".into()),
                    ("camera".into(), "cam-6".into()),
                ],
            }],
            severity: Severity::Warning,
        }
    }

    #[test]
    fn the_headline_states_counts_span_tops_and_severity() {
        assert_eq!(
            headline(&facts()),
            "Warning: 9 events between 08:00:00 and 08:02:03 UTC; top kind item_not_scanned (6), \
             top zone checkout-2 (6), top camera cam-6 (9)."
        );
        let mut one = facts();
        one.events = 1;
        one.last_ms = one.first_ms;
        assert!(headline(&one).starts_with("Warning: 1 event at 08:00:00 UTC;"));
    }

    #[test]
    fn sentences_bind_each_value_to_its_name() {
        let p = Plan::new(&facts(), 5);
        assert_eq!(
            p.peaks,
            vec!["The highest dwell_s was 41.5 on cam-6 in exit-1 at 08:01:40."]
        );
        assert_eq!(
            p.shares,
            vec![
                "checkout-2 had 6 of the 9 events.",
                "exit-1 had 3 of the 9 events.",
                "cam-6 had 9 of the 9 events."
            ]
        );
        assert_eq!(p.next, vec!["oddity followed with 3 events."]);
        assert_eq!(
            p.checks,
            vec![
                "Check the till footage first, as item_not_scanned likely means missed scans at a till.",
                "Check what caused oddity first."
            ]
        );
        assert_eq!(
            p.starts,
            vec![
                "Start with checkout-2.",
                "Start with exit-1.",
                "Start with cam-6."
            ]
        );
        assert_eq!(
            p.template(),
            "The highest dwell_s was 41.5 on cam-6 in exit-1 at 08:01:40. Check the till \
             footage first, as item_not_scanned likely means missed scans at a till."
        );
    }

    #[test]
    fn the_grammar_admits_only_the_planned_sentences() {
        let g = Plan::new(&facts(), 5).grammar();
        let root = g.lines().next().unwrap();
        assert_eq!(
            root,
            "root ::= (peak \" \" (share \" \")?) check (\" \" start)?"
        );
        assert!(
            g.contains("next ::= \"oddity followed with 3 events.\"\n"),
            "{g}"
        );
        assert!(!g.contains("[a-z"), "no free words: {g}");
    }

    #[test]
    fn a_place_names_each_value_once() {
        let mut pk = facts().peaks.remove(0);
        pk.keys = vec![
            ("zone".into(), "stockroom".into()),
            ("camera".into(), "stockroom".into()),
        ];
        assert_eq!(on_place(&pk), " on stockroom");
    }

    #[test]
    fn only_the_first_measure_leads() {
        let mut f = facts();
        f.peaks.push(Peak {
            column: "score".into(),
            value: 0.9,
            at_ms: 1_709_280_050_000,
            keys: vec![("zone".into(), "checkout-2".into())],
        });
        let p = Plan::new(&f, 5);
        assert_eq!(p.peaks.len(), 2);
        let g = p.grammar();
        assert!(g.contains("peak ::= \"The highest dwell_s was 41.5"), "{g}");
        assert!(!g.contains("score"), "{g}");
    }

    #[test]
    fn without_kinds_or_measures_the_check_names_where_the_events_are() {
        let mut f = facts();
        f.kinds = None;
        f.peaks.clear();
        let p = Plan::new(&f, 5);
        assert_eq!(
            p.checks,
            vec![
                "Check checkout-2 first.",
                "Check exit-1 first.",
                "Check cam-6 first."
            ]
        );
        assert!(p.starts.is_empty() && p.next.is_empty());
        assert_eq!(
            p.template(),
            "checkout-2 had 6 of the 9 events. Check checkout-2 first."
        );
        let g = p.grammar();
        assert!(g.starts_with("root ::= (share \" \") check\n"), "{g}");
    }
}
