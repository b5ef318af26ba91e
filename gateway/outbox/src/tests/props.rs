//! Random append / lease / ack / release / reopen sequences against a model:
//! no un-acknowledged entry is ever lost while the outbox is under its bound,
//! evictions follow (priority, age) order, and leases keep order.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use proptest::prelude::*;

use super::*;
use crate::{AppendOutcome, Evictions};

const SINKS: [&str; 2] = ["s0", "s1"];

#[derive(Debug, Clone)]
enum Op {
    Append {
        sink: usize,
        priority: Priority,
        lens: Vec<usize>,
    },
    Lease {
        sink: usize,
        max: usize,
    },
    Ack {
        sink: usize,
        n: usize,
        stray: bool,
    },
    Release {
        sink: usize,
    },
    Reopen,
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::Low),
        Just(Priority::Normal),
        Just(Priority::High)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..2usize, priority(), prop::collection::vec(0..700usize, 0..8))
            .prop_map(|(sink, priority, lens)| Op::Append { sink, priority, lens }),
        3 => (0..2usize, 1..6usize).prop_map(|(sink, max)| Op::Lease { sink, max }),
        3 => (0..2usize, 0..6usize, any::<bool>()).prop_map(|(sink, n, stray)| Op::Ack { sink, n, stray }),
        1 => (0..2usize).prop_map(|sink| Op::Release { sink }),
        1 => Just(Op::Reopen),
    ]
}

fn on_full() -> impl Strategy<Value = OnFull> {
    prop_oneof![
        Just(OnFull::DropOldest),
        Just(OnFull::DropNew),
        Just(OnFull::Block)
    ]
}

#[derive(Debug, Clone, Copy)]
struct Row {
    sink: usize,
    priority: Priority,
    size: u64,
}

/// The specification, written as plainly as possible.
#[derive(Debug, Default)]
struct Model {
    rows: BTreeMap<i64, Row>,
    leased: HashMap<usize, BTreeSet<i64>>,
}

struct Expected {
    /// Sizes of the new entries stored, in order.
    stored: Vec<u64>,
    consumed: usize,
    evicted: Evictions,
    removed: Vec<i64>,
}

impl Model {
    fn total(&self) -> u64 {
        self.rows.values().map(|r| r.size).sum()
    }

    fn append(&self, max: u64, on_full: OnFull, priority: Priority, sizes: &[u64]) -> Expected {
        let mut evicted = Evictions::default();
        let mut fits: VecDeque<u64> = VecDeque::new();
        for &s in sizes {
            if s > max {
                evicted.too_large += 1;
                evicted.bytes += s;
            } else {
                fits.push_back(s);
            }
        }
        let mut removed = Vec::new();
        match on_full {
            OnFull::DropOldest => {
                // Everything in, then drop in (priority, id) order among what
                // may go; new entries come after every stored one.
                let mut order: Vec<(Priority, i64, u64)> = self
                    .rows
                    .iter()
                    .filter(|(_, r)| r.priority <= priority)
                    .map(|(id, r)| (r.priority, *id, r.size))
                    .collect();
                order.sort();
                let mut order = order.into_iter();
                let mut total = self.total() + fits.iter().sum::<u64>();
                while total > max {
                    if let Some((_, id, size)) = order.next() {
                        removed.push(id);
                        evicted.drop_oldest += 1;
                        evicted.bytes += size;
                        total -= size;
                    } else {
                        let newer: u64 = fits.iter().sum();
                        let size = fits.pop_front().unwrap();
                        if newer > max {
                            evicted.drop_oldest += 1;
                        } else {
                            evicted.outranked += 1;
                        }
                        evicted.bytes += size;
                        total -= size;
                    }
                }
                Expected {
                    stored: fits.into(),
                    consumed: sizes.len(),
                    evicted,
                    removed,
                }
            }
            OnFull::DropNew | OnFull::Block => {
                let mut total = self.total();
                let (mut stored, mut consumed) = (Vec::new(), 0);
                for (i, &s) in sizes.iter().enumerate() {
                    if s > max {
                        consumed += 1;
                        continue;
                    }
                    if total + s > max {
                        if on_full == OnFull::DropNew {
                            for &rest in &sizes[i..] {
                                if rest <= max {
                                    evicted.drop_new += 1;
                                    evicted.bytes += rest;
                                }
                            }
                            consumed = sizes.len();
                        } else {
                            // Too-large entries after the blocked one are not
                            // reached yet.
                            evicted.too_large =
                                sizes[..i].iter().filter(|s| **s > max).count() as u64;
                            evicted.bytes = sizes[..i].iter().filter(|s| **s > max).sum();
                        }
                        return Expected {
                            stored,
                            consumed,
                            evicted,
                            removed,
                        };
                    }
                    total += s;
                    stored.push(s);
                    consumed += 1;
                }
                Expected {
                    stored,
                    consumed,
                    evicted,
                    removed,
                }
            }
        }
    }

    fn next_lease(&self, sink: usize, max: usize) -> Vec<i64> {
        let leased = self.leased.get(&sink);
        let mut next: Vec<(std::cmp::Reverse<Priority>, i64)> = self
            .rows
            .iter()
            .filter(|(id, r)| r.sink == sink && !leased.is_some_and(|l| l.contains(id)))
            .map(|(id, r)| (std::cmp::Reverse(r.priority), *id))
            .collect();
        next.sort();
        next.into_iter().take(max).map(|(_, id)| id).collect()
    }
}

/// Compares an append's outcome with the model's expectation and applies it.
fn check_append(
    model: &mut Model,
    out: &AppendOutcome,
    exp: Expected,
    new: Row,
    sizes: &[u64],
    max: u64,
) {
    let before = model.total();
    if sizes.iter().all(|s| *s <= max) && before + sizes.iter().sum::<u64>() <= max {
        assert_eq!(
            out.evicted,
            Evictions::default(),
            "nothing may be dropped under the bound"
        );
        assert_eq!(out.ids.len(), sizes.len());
    }
    assert_eq!(out.evicted, exp.evicted);
    assert_eq!(
        (out.ids.len(), out.consumed),
        (exp.stored.len(), exp.consumed)
    );
    assert_eq!(out.blocked, exp.consumed < sizes.len());
    let last = model.rows.keys().next_back().copied().unwrap_or(0);
    assert!(out.ids.windows(2).all(|w| w[0] < w[1]));
    assert!(
        out.ids.first().is_none_or(|first| *first > last),
        "ids only grow"
    );
    for id in exp.removed {
        model.rows.remove(&id);
    }
    for (id, size) in out.ids.iter().zip(exp.stored) {
        model.rows.insert(*id, Row { size, ..new });
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_operations_never_lose_an_unacked_entry_and_keep_order(
        max in 400u64..3000,
        on_full in on_full(),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let options = fast(max, on_full);
        let mut o = open(&path, options.clone());
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Append { sink, priority, lens } => {
                    let ps: Vec<Vec<u8>> = lens.iter().map(|l| vec![b'x'; *l]).collect();
                    let sizes: Vec<u64> = ps.iter().map(|p| entry_size("t", p)).collect();
                    let exp = model.append(max, on_full, priority, &sizes);
                    let out = o.append(SINKS[sink], priority, &entries("t", &ps)).unwrap();
                    let new = Row { sink, priority, size: 0 };
                    check_append(&mut model, &out, exp, new, &sizes, max);
                }
                Op::Lease { sink, max } => {
                    let expected = model.next_lease(sink, max);
                    let got: Vec<i64> = o.lease(SINKS[sink], max).unwrap().iter().map(|l| l.id).collect();
                    prop_assert_eq!(&got, &expected);
                    model.leased.entry(sink).or_default().extend(got);
                }
                Op::Ack { sink, n, stray } => {
                    let mut ids: Vec<i64> = model.leased.get(&sink).map(|l| l.iter().take(n).copied().collect()).unwrap_or_default();
                    if stray {
                        ids.push(1);
                    }
                    let present = ids.iter().filter(|id| model.rows.contains_key(id)).count() as u64;
                    prop_assert_eq!(o.ack(&ids).unwrap(), present);
                    for id in &ids {
                        model.rows.remove(id);
                        if let Some(l) = model.leased.get_mut(&sink) {
                            l.remove(id);
                        }
                    }
                }
                Op::Release { sink } => {
                    o.release(SINKS[sink]);
                    model.leased.remove(&sink);
                }
                Op::Reopen => {
                    drop(o);
                    o = open(&path, options.clone());
                    model.leased.clear();
                }
            }
            let stored: Vec<i64> = o.dump(usize::MAX).unwrap().iter().map(|e| e.id).collect();
            let expected: Vec<i64> = model.rows.keys().copied().collect();
            prop_assert_eq!(stored, expected);
            prop_assert!(model.total() <= max);
            prop_assert_eq!(o.totals().unwrap(), (model.rows.len() as u64, model.total()));
            assert_counters_match(&o);
        }
    }
}
