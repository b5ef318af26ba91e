//! Which new entries an append stores and how many stored bytes it evicts,
//! per `on_full`; and the eviction itself.

use rusqlite::Transaction;

use crate::config::{OnFull, Priority};

/// Why entries were dropped; the `reason` label of
/// `sluice_outbox_evicted_rows_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvictReason {
    /// Older entries (stored, or the head of an append larger than the whole
    /// outbox) made room for newer ones under `on_full: drop_oldest`.
    DropOldest,
    /// New entries rejected under `on_full: drop_new`.
    DropNew,
    /// New entries rejected under `on_full: drop_oldest` because the space is
    /// held by entries of a higher priority, which are never evicted for them.
    Outranked,
    /// A single entry larger than `max_bytes`, rejected under every policy.
    TooLarge,
}

impl EvictReason {
    /// Every reason, in label order.
    pub const ALL: [EvictReason; 4] = [
        EvictReason::DropOldest,
        EvictReason::DropNew,
        EvictReason::Outranked,
        EvictReason::TooLarge,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EvictReason::DropOldest => "drop_oldest",
            EvictReason::DropNew => "drop_new",
            EvictReason::Outranked => "outranked",
            EvictReason::TooLarge => "too_large",
        }
    }
}

/// Entries dropped by one call, by reason. Stored entries evicted under
/// `drop_oldest` may belong to any sink of the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evictions {
    /// See [`EvictReason::DropOldest`].
    pub drop_oldest: u64,
    /// See [`EvictReason::DropNew`].
    pub drop_new: u64,
    /// See [`EvictReason::Outranked`].
    pub outranked: u64,
    /// See [`EvictReason::TooLarge`].
    pub too_large: u64,
    /// Bytes (as counted against `max_bytes`) of everything dropped.
    pub bytes: u64,
}

impl Evictions {
    /// Count for `reason`.
    pub fn get(&self, reason: EvictReason) -> u64 {
        match reason {
            EvictReason::DropOldest => self.drop_oldest,
            EvictReason::DropNew => self.drop_new,
            EvictReason::Outranked => self.outranked,
            EvictReason::TooLarge => self.too_large,
        }
    }

    /// Reasons with a non-zero count, for counting and logging.
    pub fn iter(&self) -> impl Iterator<Item = (EvictReason, u64)> + '_ {
        EvictReason::ALL
            .into_iter()
            .map(|r| (r, self.get(r)))
            .filter(|(_, n)| *n > 0)
    }

    /// Entries dropped for any reason.
    pub fn total(&self) -> u64 {
        self.drop_oldest + self.drop_new + self.outranked + self.too_large
    }

    fn add(&mut self, reason: EvictReason, bytes: u64) {
        match reason {
            EvictReason::DropOldest => self.drop_oldest += 1,
            EvictReason::DropNew => self.drop_new += 1,
            EvictReason::Outranked => self.outranked += 1,
            EvictReason::TooLarge => self.too_large += 1,
        }
        self.bytes += bytes;
    }
}

/// What an append does, decided before touching the table.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Indices of the entries to store, ascending.
    pub store: Vec<usize>,
    /// Entries handled, stored or dropped; `entries[consumed..]` wait
    /// (`on_full: block`).
    pub consumed: usize,
    /// Stored bytes (of priority <= the new entries') to evict first.
    pub evict_bytes: u64,
    /// New entries dropped.
    pub dropped: Evictions,
}

/// Plans an append of entries of `sizes` into an outbox holding `stored`
/// bytes, of which `evictable` belong to entries of a priority not above the
/// new ones'.
///
/// * `drop_oldest` drops entries strictly in (priority, age) order among the
///   stored entries of a priority not above the new ones' and the new entries
///   (newest last) until the rest fits: stored entries go before any new one,
///   a batch larger than the outbox keeps its newest suffix, and higher
///   priorities are never displaced.
/// * `drop_new` and `block` store the longest prefix that fits now; `drop_new`
///   rejects the rest, `block` leaves it to the caller's retry. A prefix (not
///   every entry that happens to fit) keeps a sink's entries in order.
/// * An entry larger than `max_bytes` can never fit: it is dropped as
///   `too_large` under every policy instead of blocking forever.
pub(crate) fn plan(on_full: OnFull, max: u64, stored: u64, evictable: u64, sizes: &[u64]) -> Plan {
    let mut plan = Plan::default();
    let room = max.saturating_sub(stored);
    match on_full {
        OnFull::DropOldest => {
            let capacity = room.saturating_add(evictable.min(stored));
            let (mut kept, mut newer) = (0u64, 0u64);
            let mut keep = vec![false; sizes.len()];
            let mut full = false;
            for (i, &size) in sizes.iter().enumerate().rev() {
                if size > max {
                    plan.dropped.add(EvictReason::TooLarge, size);
                    continue;
                }
                newer += size;
                if !full && kept + size <= capacity {
                    kept += size;
                    keep[i] = true;
                } else {
                    // Strict oldest-first: once a new entry must go, every
                    // evictable stored entry (all older) goes too, and so do
                    // the older new entries.
                    full = true;
                    // Would it have fit if no higher priority held space?
                    let reason = if newer > max {
                        EvictReason::DropOldest
                    } else {
                        EvictReason::Outranked
                    };
                    plan.dropped.add(reason, size);
                }
            }
            plan.store = (0..sizes.len()).filter(|&i| keep[i]).collect();
            plan.consumed = sizes.len();
            plan.evict_bytes = if full {
                evictable.min(stored)
            } else {
                kept.saturating_sub(room)
            };
        }
        OnFull::DropNew | OnFull::Block => {
            let mut used = 0u64;
            for (i, &size) in sizes.iter().enumerate() {
                if size > max {
                    plan.dropped.add(EvictReason::TooLarge, size);
                } else if used + size <= room {
                    used += size;
                    plan.store.push(i);
                } else if on_full == OnFull::Block {
                    plan.consumed = i;
                    return plan;
                } else {
                    // The rest is rejected even where a smaller entry would
                    // fit, so that what is stored stays a prefix, in order.
                    for &s in &sizes[i..] {
                        let reason = if s > max {
                            EvictReason::TooLarge
                        } else {
                            EvictReason::DropNew
                        };
                        plan.dropped.add(reason, s);
                    }
                    plan.consumed = sizes.len();
                    return plan;
                }
            }
            plan.consumed = sizes.len();
        }
    }
    plan
}

/// A stored entry removed by eviction, for counter updates.
#[derive(Debug)]
pub(crate) struct Removed {
    pub sink: String,
    pub priority: i64,
    pub size: u64,
}

/// Deletes stored entries of priority <= `max_priority`, lowest priority
/// first and oldest first within a priority, until at least `need` bytes are
/// freed. Returns what was removed.
pub(crate) fn evict_oldest(
    tx: &Transaction<'_>,
    max_priority: Priority,
    need: u64,
) -> rusqlite::Result<Vec<Removed>> {
    let mut removed = Vec::new();
    if need == 0 {
        return Ok(removed);
    }
    let mut freed = 0u64;
    // Within one priority the evicted ids form a prefix of the index, so one
    // range delete per priority removes them.
    let mut select =
        tx.prepare("SELECT id, sink, size FROM outbox WHERE priority = ?1 ORDER BY id")?;
    let mut delete = tx.prepare("DELETE FROM outbox WHERE priority = ?1 AND id <= ?2")?;
    for p in Priority::DRAIN_ORDER
        .into_iter()
        .rev()
        .filter(|p| *p <= max_priority)
    {
        let mut last = None;
        let mut rows = select.query([p.to_db()])?;
        while freed < need {
            let Some(row) = rows.next()? else { break };
            let size = u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0);
            last = Some(row.get::<_, i64>(0)?);
            removed.push(Removed {
                sink: row.get(1)?,
                priority: p.to_db(),
                size,
            });
            freed += size;
        }
        drop(rows);
        if let Some(last) = last {
            delete.execute((p.to_db(), last))?;
        }
        if freed >= need {
            break;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_oldest_keeps_everything_when_there_is_room() {
        let p = plan(OnFull::DropOldest, 100, 40, 40, &[10, 20, 30]);
        assert_eq!((p.store, p.consumed, p.evict_bytes), (vec![0, 1, 2], 3, 0));
        assert_eq!(p.dropped.total(), 0);
    }

    #[test]
    fn drop_oldest_evicts_only_the_missing_bytes() {
        let p = plan(OnFull::DropOldest, 100, 90, 90, &[10, 20]);
        assert_eq!((p.store, p.evict_bytes), (vec![0, 1], 20));
    }

    #[test]
    fn drop_oldest_drops_the_head_of_the_batch_when_higher_priorities_hold_the_space() {
        // 70 bytes of higher-priority entries, 20 evictable: 30 bytes of room at most.
        let p = plan(OnFull::DropOldest, 100, 90, 20, &[10, 10, 10, 10]);
        assert_eq!((p.store, p.evict_bytes), (vec![1, 2, 3], 20));
        assert_eq!(
            p.dropped,
            Evictions {
                outranked: 1,
                bytes: 10,
                ..Default::default()
            }
        );
    }

    #[test]
    fn drop_oldest_keeps_the_newest_entries_of_a_batch_larger_than_the_outbox() {
        let p = plan(OnFull::DropOldest, 100, 0, 0, &[60, 60, 30]);
        assert_eq!(p.store, vec![1, 2]);
        assert_eq!(
            p.dropped,
            Evictions {
                drop_oldest: 1,
                bytes: 60,
                ..Default::default()
            }
        );
    }

    #[test]
    fn drop_oldest_evicts_every_older_stored_entry_before_dropping_a_new_one() {
        // Stored: 6 evictable bytes, 4 free; the batch of 11 cannot fit whole.
        let p = plan(OnFull::DropOldest, 10, 6, 6, &[5, 6]);
        assert_eq!((p.store, p.evict_bytes), (vec![1], 6));
        assert_eq!(
            p.dropped,
            Evictions {
                drop_oldest: 1,
                bytes: 5,
                ..Default::default()
            }
        );
    }

    #[test]
    fn drop_new_stores_a_prefix_and_rejects_the_rest() {
        let p = plan(OnFull::DropNew, 100, 70, 70, &[20, 20, 5, 200]);
        assert_eq!((p.store, p.consumed, p.evict_bytes), (vec![0], 4, 0));
        assert_eq!(
            p.dropped,
            Evictions {
                drop_new: 2,
                too_large: 1,
                bytes: 225,
                ..Default::default()
            }
        );
    }

    #[test]
    fn block_stores_a_prefix_and_leaves_the_rest_to_the_retry() {
        let p = plan(OnFull::Block, 100, 70, 70, &[200, 20, 20, 5]);
        assert_eq!((p.store, p.consumed), (vec![1], 2));
        assert_eq!(
            p.dropped,
            Evictions {
                too_large: 1,
                bytes: 200,
                ..Default::default()
            }
        );
    }
}
