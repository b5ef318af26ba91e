//! The deterministic digest used when the model's answer fails the checker,
//! times out or the model is unavailable: the headline and the plan's first
//! choices ([`crate::plan`]). Built only from the facts, so it is grounded by
//! construction (a unit test runs the checker on it).

use crate::facts::Facts;
use crate::plan::{self, Plan};

/// The digest of `facts` without the model, naming at most `top` values per
/// column.
pub fn summary(facts: &Facts, top: usize) -> String {
    plan::digest(facts, &Plan::new(facts, top).template())
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
            "Warning: 9 events between 08:00:00 and 08:02:03 UTC; top kind item_not_scanned (6), \
             top zone checkout-2 (6).\nThe highest dwell_s was 41.5 in exit-1 at 08:01:40. \
             Check the till footage first, as item_not_scanned likely means missed scans at a till."
        );
    }

    #[test]
    fn template_passes_the_grounding_check() {
        let f = facts();
        let v = ground::check(&summary(&f, 5), &f.grounding(5));
        assert!(v.is_ok(), "{v:?}");
    }
}
