//! The deterministic summary used when the model's answer fails the checker,
//! times out or the model is unavailable. Built only from the facts, so it is
//! grounded by construction (a unit test runs the checker on it).

use crate::facts::{Facts, number, time};

/// A one-paragraph summary of `facts`, naming at most `top` kinds.
pub fn summary(facts: &Facts, top: usize) -> String {
    let mut s = format!(
        "{} events between {} and {} UTC",
        facts.events,
        time::clock(facts.first_ms),
        time::clock(facts.last_ms)
    );
    if let Some(k) = &facts.kinds {
        let list: Vec<String> = k
            .counts
            .iter()
            .take(top)
            .map(|c| format!("{} {}", c.name, c.events))
            .collect();
        if !list.is_empty() {
            s.push_str(": ");
            s.push_str(&list.join(", "));
        }
    }
    s.push('.');
    for b in &facts.keys {
        if let Some(t) = b.top() {
            s.push_str(&format!(
                " Most events {}: {} ({}).",
                b.column, t.name, t.events
            ));
        }
    }
    for p in &facts.peaks {
        let place: Vec<&str> = p.keys.iter().map(|(_, v)| v.as_str()).collect();
        let place = if place.is_empty() {
            String::new()
        } else {
            format!(" on {}", place.join(" in "))
        };
        s.push_str(&format!(
            " Highest {} {}{place} at {}.",
            p.column,
            number(p.value),
            time::clock(p.at_ms)
        ));
    }
    s.push_str(&format!(" Severity {}.", facts.severity.as_str()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Breakdown, Counted, Peak, Severity};
    use crate::ground;

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
                column: "kind".into(),
                counts: vec![counted("item_not_scanned", 6), counted("loitering", 3)],
                untracked: 0,
            }),
            keys: vec![Breakdown {
                column: "zone".into(),
                counts: vec![counted("checkout-2", 6), counted("exit-1", 3)],
                untracked: 0,
            }],
            peaks: vec![Peak {
                column: "dwell_s".into(),
                value: 41.5,
                at_ms: 1_709_280_100_000,
                keys: vec![("zone".into(), "exit-1".into())],
            }],
            severity: Severity::Warning,
        }
    }

    #[test]
    fn template_states_the_facts() {
        assert_eq!(
            summary(&facts(), 5),
            "9 events between 08:00:00 and 08:02:03 UTC: item_not_scanned 6, loitering 3. \
             Most events zone: checkout-2 (6). Highest dwell_s 41.5 on exit-1 at 08:01:40. \
             Severity warning."
        );
    }

    #[test]
    fn template_passes_the_grounding_check() {
        let f = facts();
        let v = ground::check(&summary(&f, 5), &f.grounding(5));
        assert!(v.is_ok(), "{v:?}");
    }
}
